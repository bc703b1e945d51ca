using System.Net;
using System.Net.Sockets;

namespace Orchestrator.Cluster.Tests;

/// <summary>deploy/local-cluster.sh, as a user runs it: silo processes on Redis membership, then a job from the CLI.</summary>
[Collection(RedisCollection.Name)]
public class LocalClusterScriptTests(RedisServer redis)
{
    [Fact]
    public async Task The_script_starts_two_silos_trains_a_job_and_stops_everything()
    {
        int basePort = FreeBasePort(2);
        await using var script = ChildProcess.Start("local-cluster.sh", "bash",
            [Path.Combine(BuildMetadata.RepositoryRoot, "deploy", "local-cluster.sh"), "--silos", "2", "--no-build", "--configuration", Build.Configuration,
             "--redis", redis.ConnectionString, "--base-port", $"{basePort}", "--", "--steps", "12", "--groups", "4", "--batch-size", "64"]);
        Assert.True(await script.WaitForExitAsync(TimeSpan.FromSeconds(180)), $"the script did not finish:\n{script.Output}");
        Assert.True(script.ExitCode == 0, $"exit code {script.ExitCode}:\n{script.Output}");
        Assert.Contains("2 silos", script.Output);
        Assert.Contains("silo-1/cpu", script.Output);
        Assert.Contains("12 of 12", script.Output);
        // Everything it started is gone: both silo ports are free again.
        foreach (int port in new[] { basePort, basePort + 1, basePort + 100, basePort + 101 })
            Assert.True(IsFree(port), $"port {port} is still in use after the script ended:\n{script.Output}");
    }

    /// <summary>A base port P where P..P+n-1 (silo) and P+100..P+100+n-1 (gateway) are all free.</summary>
    static int FreeBasePort(int n)
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int p = Random.Shared.Next(20000, 40000);
            if (Enumerable.Range(0, n).All(i => IsFree(p + i) && IsFree(p + 100 + i))) return p;
        }
        throw new InvalidOperationException("no free port range found");
    }

    static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
