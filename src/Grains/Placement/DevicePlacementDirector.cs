using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace Orchestrator.Grains.Placement;

/// <summary>
/// Resolves the silo a <see cref="WorkerKey"/> names among the active, compatible silos and checks that its
/// metadata lists the device. Runs on whichever silo places the grain, so every silo registers it.
/// </summary>
public sealed class DevicePlacementDirector(IClusterMembershipService membership, ISiloMetadataCache metadata) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = WorkerKey.Parse(target.GrainIdentity.Key.ToString()!);
        var compatible = context.GetCompatibleSilos(target);
        var silo = membership.CurrentSnapshot.Members.Values
            .FirstOrDefault(m => m.Name == key.Silo && m.Status == SiloStatus.Active && compatible.Contains(m.SiloAddress))
            ?? throw new SiloUnavailableException($"no active silo named '{key.Silo}' can host worker {key}.");
        var devices = metadata.GetSiloMetadata(silo.SiloAddress).Metadata.GetValueOrDefault(ClusterDevices.MetadataKey);
        if (devices is null)
            throw new SiloUnavailableException($"silo '{key.Silo}' has not advertised its devices yet; retry worker {key} shortly.");
        if (!ClusterDevices.Parse(devices).Contains(key.Device))
            throw new SiloUnavailableException($"silo '{key.Silo}' has devices [{devices}], not {key.Device}, so it cannot host worker {key}.");
        return Task.FromResult(silo.SiloAddress);
    }
}
