using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.TestingHost;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// One real 3-silo cluster (loopback TCP) shared by every test of the collection: silos "Primary", "Secondary_1"
/// and "Secondary_2", each advertising the devices configured for its name (all "cpu" here, no GPU in CI).
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    /// <summary>Small on purpose, so the too-large-payload path is cheap to reach.</summary>
    public const int MaxMessageBytes = 4 << 20;
    public static readonly string[] Silos = ["Primary", "Secondary_1", "Secondary_2"];
    /// <summary>The cluster secret of the silos' data channels; they all run in this process.</summary>
    static readonly byte[] ChannelSecret = RandomNumberGenerator.GetBytes(32);

    /// <summary>Built here, started by <see cref="InitializeAsync"/> (xunit runs it before any test of the collection).</summary>
    public TestCluster Cluster { get; } = Build();
    public IClusterClient Client => Cluster.Client;

    static TestCluster Build()
    {
        var builder = new TestClusterBuilder(3);
        builder.ConfigureHostConfiguration(c => c.AddInMemoryCollection(Silos.ToDictionary(s => $"Devices:{s}", _ => (string?)"cpu")));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        return builder.Build();
    }

    public async Task InitializeAsync()
    {
        await Cluster.DeployAsync();
        await WaitForDeviceMetadata();
    }

    /// <summary>Silo metadata spreads asynchronously; wait until every silo sees every silo's devices.</summary>
    async Task WaitForDeviceMetadata()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        foreach (var silo in Cluster.Silos.Cast<InProcessSiloHandle>())
        {
            var services = silo.SiloHost.Services;
            var membership = services.GetRequiredService<IClusterMembershipService>();
            var metadata = services.GetRequiredService<ISiloMetadataCache>();
            while (ClusterDevices.Discover(membership, metadata).Length < Silos.Length)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"silo {silo.Name} never saw all devices.");
                await Task.Delay(100);
            }
        }
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    /// <summary>
    /// Announces on every silo's data channel that transfers of up to <paramref name="maxTransferBytes"/> are expected,
    /// until disposed: what the grains of a job do for themselves, done here for tests whose grains do not.
    /// </summary>
    public IDisposable ExpectChannelTransfers(long maxTransferBytes) =>
        new Announcements([.. Cluster.Silos.Cast<InProcessSiloHandle>()
            .Select(silo => silo.SiloHost.Services.GetRequiredService<ChannelEndpoint>().Expect(maxTransferBytes))]);

    sealed class Announcements(IDisposable[] each) : IDisposable
    {
        public void Dispose() => Array.ForEach(each, announcement => announcement.Dispose());
    }

    sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            string name = silo.Configuration["Orleans:Name"]!;
            var devices = ClusterDevices.Parse(silo.Configuration[$"Devices:{name}"]);
            silo.AddOrchestrator(devices, MaxMessageBytes, TimeSpan.FromMinutes(2), ChannelSecret);
        }
    }

    sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder client) =>
            client.AddOrchestratorClient(MaxMessageBytes, TimeSpan.FromMinutes(2));
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}

/// <summary>
/// A cluster for tests that count process-wide state (live tensors): xunit runs this collection alone, after the
/// parallel ones, so no other test's tensors come and go meanwhile.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IsolatedClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "isolated cluster";
}
