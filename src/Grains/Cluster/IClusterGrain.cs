using Orleans.Concurrency;
using Orchestrator.Grains.Placement;

namespace Orchestrator.Grains;

/// <summary>The cluster at a glance: the devices silos advertise and the jobs started on it and not yet stopped. Key: <see cref="Key"/>.</summary>
public interface IClusterGrain : IGrainWithStringKey
{
    const string Key = "cluster";

    [AlwaysInterleave]
    Task<ClusterDevice[]> GetDevicesAsync();

    Task AddJobAsync(string name);

    Task RemoveJobAsync(string name);

    [AlwaysInterleave]
    Task<string[]> GetJobsAsync();
}
