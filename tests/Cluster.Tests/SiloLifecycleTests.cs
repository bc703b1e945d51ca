using Orchestrator.Grains;

namespace Orchestrator.Cluster.Tests;

/// <summary>What systemd and Kubernetes rely on: SIGTERM makes a silo leave the Redis membership and exit cleanly.</summary>
[Collection(RedisCollection.Name)]
public class SiloLifecycleTests(RedisServer redis)
{
    [Fact]
    public async Task A_silo_stopped_with_SIGTERM_leaves_the_cluster_and_exits_with_0()
    {
        await using var cluster = await SiloProcesses.StartAsync(redis.ConnectionString, 2);
        await using var connection = await cluster.ConnectAsync();
        var grain = connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key);
        Assert.Equal(2, (await grain.GetDevicesAsync()).Length);

        var leaving = cluster.Silos[1];
        await leaving.StopAsync(TimeSpan.FromSeconds(30));
        Assert.True(leaving.ExitCode == 0, $"exit code {leaving.ExitCode}:\n{leaving.Output}");

        // The client may have been talking through the leaving silo's gateway: a call can fail while it switches over.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string seen = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                seen = string.Join(", ", (await grain.GetDevicesAsync()).Select(d => d.ToString()));
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException)
            {
                seen = e.Message;
            }
            if (seen == "silo-0/cpu") return;
            await Task.Delay(250);
        }
        Assert.Fail($"the cluster still lists [{seen}] 30 s after silo-1 left");
    }
}
