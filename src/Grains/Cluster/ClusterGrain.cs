using Orchestrator.Grains.Placement;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Orchestrator.Grains;

/// <summary>Lists devices from silo metadata and remembers job names (in memory; a durable registry comes later).</summary>
[KeepAlive]
public sealed class ClusterGrain(IClusterMembershipService membership, ISiloMetadataCache metadata) : Grain, IClusterGrain
{
    readonly SortedSet<string> jobs = new(StringComparer.Ordinal);

    public Task<ClusterDevice[]> GetDevicesAsync() => Task.FromResult(ClusterDevices.Discover(membership, metadata));

    public Task AddJobAsync(string name)
    {
        jobs.Add(name);
        return Task.CompletedTask;
    }

    public Task RemoveJobAsync(string name)
    {
        jobs.Remove(name);
        return Task.CompletedTask;
    }

    public Task<string[]> GetJobsAsync() => Task.FromResult(jobs.ToArray());
}
