namespace Orchestrator.Cluster.Tests;

/// <summary>
/// One Redis server and three silo processes shared by the tests of the collection. silo-0 serves the Orleans
/// dashboard; silo-1 also writes its log to a JSON file, with the grain call events (Debug) on; silo-2 has a fixed data channel port.
/// </summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    public RedisServer Redis { get; } = new();
    SiloProcesses? cluster;

    /// <summary>The silos, started by <see cref="InitializeAsync"/> once Redis is up (xunit runs it before any test of the collection).</summary>
    public SiloProcesses Cluster => cluster ?? throw new InvalidOperationException("the silos are started in InitializeAsync, which has not run (or failed)");
    public int DashboardPort { get; } = RedisServer.FreePort();
    /// <summary>silo-2's fixed data channel port (the others pick a free one).</summary>
    public int DataChannelPort { get; } = RedisServer.FreePort();
    public string LogDirectory { get; } = Directory.CreateTempSubdirectory("orchestrator-silo-log").FullName;

    public async Task InitializeAsync()
    {
        await Redis.InitializeAsync();
        cluster = await SiloProcesses.StartAsync(Redis.ConnectionString, 3, i => i switch
        {
            0 => ["--dashboard-port", $"{DashboardPort}"],
            1 => ["--log-file", Path.Combine(LogDirectory, "silo-1.json"), "--Serilog:MinimumLevel:Override:Orchestrator.Grains.Observability", "Debug"],
            _ => ["--data-channel-port", $"{DataChannelPort}"],
        });
    }

    public async Task DisposeAsync()
    {
        if (cluster is not null) await cluster.DisposeAsync();
        await Redis.DisposeAsync();
        Directory.Delete(LogDirectory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class RedisClusterCollection : ICollectionFixture<RedisClusterFixture>
{
    public const string Name = "redis cluster";
}

/// <summary>A Redis server alone, for tests that start their own processes.</summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}
