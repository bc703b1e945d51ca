using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// Silo processes of the built src/Silo on loopback, joined through Redis membership under a cluster id of their own
/// (so clusters of different tests never meet in the shared Redis): "silo-0", "silo-1", ... each owning "cpu". With
/// <see cref="Tls"/> on, the silos get it through the environment and <see cref="ClientOptions"/> uses it too.
/// </summary>
public sealed class SiloProcesses : IAsyncDisposable
{
    readonly List<ChildProcess> silos = [];

    public string Redis { get; }
    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";
    /// <summary>The cluster secret of these silos' data channels (redis membership requires one).</summary>
    public string Secret { get; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
    public List<int> GatewayPorts { get; } = [];
    public IReadOnlyList<ChildProcess> Silos => silos;
    public ClusterTlsOptions Tls { get; }

    SiloProcesses(string redis, ClusterTlsOptions tls) => (Redis, Tls) = (redis, tls);

    /// <summary>Starts <paramref name="count"/> silos; <paramref name="extra"/> adds command-line options per silo index.</summary>
    public static async Task<SiloProcesses> StartAsync(string redis, int count, Func<int, string[]>? extra = null, ClusterTlsOptions? tls = null)
    {
        var cluster = new SiloProcesses(redis, tls ?? new());
        try
        {
            for (int i = 0; i < count; i++) cluster.StartSilo(i, extra?.Invoke(i) ?? []);
            await cluster.WaitForDevicesAsync(count, TimeSpan.FromSeconds(90));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    void StartSilo(int index, string[] extra)
    {
        int siloPort = RedisServer.FreePort(), gatewayPort = RedisServer.FreePort();
        GatewayPorts.Add(gatewayPort);
        string[] arguments =
        [
            Build.SiloDll, "--membership", "redis", "--cluster-id", ClusterId, "--advertised-ip", "127.0.0.1",
            "--name", $"silo-{index}", "--silo-port", $"{siloPort}", "--gateway-port", $"{gatewayPort}", "--devices", "cpu", .. extra,
        ];
        // The connection string, the secret and the TLS settings (with their passwords) go through the environment, as in deploy/local-cluster.sh.
        var environment = Tls.ToEnvironment();
        environment["Cluster__Redis"] = Redis;
        environment["Cluster__Secret"] = Secret;
        silos.Add(ChildProcess.Start($"silo-{index}", "dotnet", arguments, environment));
    }

    public ClusterConnectionOptions ClientOptions() => new()
    {
        Membership = ClusterConnectionOptions.RedisMembership,
        Redis = Redis,
        ClusterId = ClusterId,
        ResponseTimeoutSeconds = 120,
        Tls = Tls,
    };

    public Task<ClusterConnection> ConnectAsync() => ClusterConnection.ConnectAsync(ClientOptions(), verbose: false);

    /// <summary>Until a client through Redis sees <paramref name="count"/> silos' devices; fails with the silos' output.</summary>
    async Task WaitForDevicesAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var silo in silos.Where(s => s.HasExited))
                throw new InvalidOperationException($"{silo.Name} exited ({silo.ExitCode}) while the cluster started:\n{silo.Output}");
            try
            {
                await using var connection = await ConnectAsync().WaitAsync(TimeSpan.FromSeconds(30));
                var cluster = connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key);
                while (DateTime.UtcNow < deadline)
                {
                    if ((await cluster.GetDevicesAsync()).Length >= count) return;
                    await Task.Delay(250);
                }
            }
            catch (Exception e)
            {
                last = e;   // e.g. no silo has registered its gateway in Redis yet
                await Task.Delay(500);
            }
        }
        throw new TimeoutException($"{count} silos did not join within {timeout.TotalSeconds} s ({last?.Message}):\n" +
            string.Join("\n", silos.Select(s => $"--- {s.Name}\n{s.Output}")));
    }

    public async ValueTask DisposeAsync()
    {
        // Stop all at once (each SIGTERM, bounded wait, then SIGKILL), so a slow one does not hold up the rest.
        await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask()));
    }
}
