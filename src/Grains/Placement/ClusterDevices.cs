using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Orchestrator.Grains.Placement;

/// <summary>One device that one silo advertises, with where that silo runs (<see cref="SiloLocality"/>).</summary>
[GenerateSerializer, Immutable]
public sealed record ClusterDevice(
    [property: Id(0)] string Silo, [property: Id(1)] string Device, [property: Id(2)] string Address, [property: Id(3)] string? DataChannel = null,
    [property: Id(4)] string? Host = null, [property: Id(5)] string? Process = null)
{
    public bool IsGpu => Kernels.Devices.IsGpuName(Device);

    public override string ToString() => $"{Silo}/{Device}";
}

/// <summary>
/// Every silo lists its devices in its silo metadata under "devices" ("cuda:0,cuda:1" or "cpu"); this reads them
/// back for the whole cluster.
/// </summary>
public static class ClusterDevices
{
    public const string MetadataKey = "devices";

    public static string[] Parse(string? list) =>
        (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The devices of the active silos, ordered by silo name then device. The metadata cache fills asynchronously
    /// after a silo joins, so a silo whose metadata has not arrived yet is left out (callers retry later).
    /// </summary>
    public static ClusterDevice[] Discover(IClusterMembershipService membership, ISiloMetadataCache metadata) =>
        membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active)
            .OrderBy(m => m.Name, StringComparer.Ordinal)
            .SelectMany(m =>
            {
                var advertised = metadata.GetSiloMetadata(m.SiloAddress).Metadata;
                return Parse(advertised.GetValueOrDefault(MetadataKey)).Select(d => new ClusterDevice(
                    m.Name, d, m.SiloAddress.ToParsableString(), advertised.GetValueOrDefault(Transport.ChannelEndpoint.MetadataKey),
                    advertised.GetValueOrDefault(SiloLocality.HostKey), advertised.GetValueOrDefault(SiloLocality.ProcessKey)));
            })
            .ToArray();

    /// <summary>Devices a job asks for: "cuda:0" matches that device on every silo, "silo/cuda:0" one silo's. Empty: all.</summary>
    public static ClusterDevice[] Select(IReadOnlyList<ClusterDevice> available, IReadOnlyList<string> wanted) =>
        wanted.Count == 0
            ? [.. available]
            : available.Where(d => wanted.Any(w => w == d.Device || w == d.ToString())).ToArray();
}
