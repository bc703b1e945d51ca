using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>
/// What a worker needs to build its shard, and nothing else of the job's spec (the coordinator validated it):
/// <list type="bullet">
/// <item>the job's name and <see cref="Towers"/>, and the groups the worker owns;</item>
/// <item><see cref="Owner"/>, the coordinator activation the worker now serves: only it may stop the worker;</item>
/// <item><see cref="DeviceNeed"/>, the memory all of the job's workers on this worker's device (<see cref="DeviceGroups"/>
/// groups) need together, since they are built at once, and <see cref="SliceBytes"/>, its largest activation slice, which its silo's data channel admits;</item>
/// <item>with <see cref="Restore"/>, the checkpoint to build from (whatever sharding wrote it), else the seed.</item>
/// </list>
/// </summary>
[GenerateSerializer, Immutable]
public sealed record WorkerSetup(
    [property: Id(0)] string Job,
    [property: Id(1)] TowerSpec Towers,
    [property: Id(2)] GroupRange Groups,
    [property: Id(3)] Guid Owner,
    [property: Id(4)] int DeviceGroups,
    [property: Id(5)] MemoryNeed DeviceNeed,
    [property: Id(6)] long SliceBytes,
    [property: Id(7)] WorkerSetup.Checkpoint? Restore = null)
{
    /// <summary>The job's checkpoint at <paramref name="Step"/> under the checkpoint root <paramref name="Directory"/>.</summary>
    [GenerateSerializer, Immutable]
    public sealed record Checkpoint([property: Id(0)] string Directory, [property: Id(1)] long Step);
}
