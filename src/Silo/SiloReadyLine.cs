using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;

namespace Orchestrator.Silo;

/// <summary>
/// Prints one line once the silo is active (after every stage of its start, the gateway's included), for people and
/// scripts waiting on it: "orchestrator silo NAME ready: silo IP:PORT, gateway IP:PORT, devices LIST, membership ...".
/// The addresses are the ones Orleans bound; the membership names Redis by its endpoints, never its password.
/// </summary>
sealed class SiloReadyLine(ILocalSiloDetails silo, string devices, string membership) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SiloReadyLine), ServiceLifecycleStage.Active + 1, _ =>
        {
            Console.Out.WriteLine(Line());
            Console.Out.Flush();
            return Task.CompletedTask;
        });

    string Line() =>
        $"orchestrator silo {silo.Name} ready: silo {silo.SiloAddress.Endpoint}, gateway {silo.GatewayAddress?.Endpoint.ToString() ?? "none"}, " +
        $"devices {devices}, membership {membership}";
}

static class SiloReadyLineHosting
{
    /// <summary>Prints the <see cref="SiloReadyLine"/> of this silo once it is active.</summary>
    public static ISiloBuilder AddReadyLine(this ISiloBuilder builder, ClusterConnectionOptions cluster, SiloHostOptions silo)
    {
        var devices = string.Join(",", ClusterDevices.Parse(silo.Devices));
        var membership = cluster.UsesRedis ? $"{ClusterConnectionOptions.RedisMembership} {cluster.RedisEndpoints()}"
            : $"{ClusterConnectionOptions.Localhost} (primary silo port {cluster.PrimarySiloPort})";
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services =>
            new SiloReadyLine(services.GetRequiredService<ILocalSiloDetails>(), devices, membership));
        return builder;
    }
}
