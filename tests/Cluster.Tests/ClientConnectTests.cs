using System.Diagnostics;
using Orchestrator.Connection;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Cluster.Tests;

/// <summary>A client that finds no gateway gives up after Cluster:ConnectTimeoutSeconds and says what to check.</summary>
[Collection(RedisCollection.Name)]
public class ClientConnectTests(RedisServer redis)
{
    [Fact]
    public async Task A_Redis_client_of_a_cluster_nobody_runs_fails_within_its_connect_timeout()
    {
        var options = new ClusterConnectionOptions { Membership = "redis", Redis = redis.ConnectionString, ClusterId = $"nobody-{Guid.NewGuid():N}", ConnectTimeoutSeconds = 3 };
        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => ClusterConnection.ConnectAsync(options, verbose: false).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"no gateway of cluster '{options.ClusterId}'", error.Message);
        Assert.Contains("via Redis 127.0.0.1:", error.Message);
        Assert.DoesNotContain("password", error.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task The_CLI_reports_a_dead_static_gateway_in_one_line_and_exits_non_zero()
    {
        await using var cli = ChildProcess.Start("orchestrator", "dotnet",
            [Build.ClientDll, "status", "--gateway", $"127.0.0.1:{RedisServer.FreePort()}", "--connect-timeout", "3"]);
        Assert.True(await cli.WaitForExitAsync(TimeSpan.FromSeconds(60)), cli.Output);
        Assert.NotEqual(0, cli.ExitCode);
        Assert.Contains("no gateway of cluster 'orchestrator'", cli.Output.ReplaceLineEndings(" "));
        Assert.DoesNotContain("Hosting failed to start", cli.Output);
    }
}
