using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>
/// What a worker needs to build its shard: the job and the groups it owns, from the job's seed or, when
/// <see cref="RestoreStep"/> is set, from that checkpoint of the job (whatever sharding wrote it). <see cref="Owner"/>
/// names the coordinator activation the worker now serves: only it may stop the worker. <see cref="DeviceGroups"/>
/// counts the groups all of the job's workers on this worker's device hold, for the memory check.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record WorkerSetup(
    [property: Id(0)] JobSpec Spec, [property: Id(1)] int FirstGroup, [property: Id(2)] int GroupCount, [property: Id(3)] long? RestoreStep = null,
    [property: Id(4)] Guid Owner = default, [property: Id(5)] int DeviceGroups = 0)
{
    public GroupRange Groups => new(FirstGroup, GroupCount);
}
