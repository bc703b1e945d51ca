using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>What a worker needs to build its shard: the job and the groups it owns.</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerSetup([property: Id(0)] JobSpec Spec, [property: Id(1)] int FirstGroup, [property: Id(2)] int GroupCount)
{
    public GroupRange Groups => new(FirstGroup, GroupCount);
}
