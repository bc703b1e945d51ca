namespace Orchestrator.Grains;

/// <summary>
/// Where a job stands. Abandoned: its client was not heard from for its lease (<see cref="Training.JobSpec.LeaseSeconds"/>),
/// so the coordinator checkpointed it (when it has a directory) and released its devices; <c>--resume</c> continues it.
/// </summary>
public enum JobState { NotStarted, Running, Finished, Failed, Stopped, Recovering, Abandoned }

/// <summary>One worker of a job: where it runs, which groups it owns, how tensors reach it (printed as <see cref="Training.EnumNames"/> names it).</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerInfo(
    [property: Id(0)] string Key,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Device,
    [property: Id(3)] int FirstGroup,
    [property: Id(4)] int GroupCount,
    [property: Id(5)] Transport.TensorPayloadKind Transport);

/// <summary>Where a job stands, as its coordinator activation (<see cref="Incarnation"/>) sees it.</summary>
[GenerateSerializer, Immutable]
public sealed record JobStatus(
    [property: Id(0)] string Name,
    [property: Id(1)] JobState State,
    [property: Id(2)] long StepsDone,
    [property: Id(3)] int StepsPlanned,
    [property: Id(4)] double? LastLoss,
    [property: Id(5)] WorkerInfo[] Workers,
    [property: Id(6)] string? Error,
    [property: Id(7)] string CoordinatorSilo,
    [property: Id(8)] long? LastCheckpointStep = null,
    [property: Id(9)] int Recoveries = 0,
    [property: Id(10)] string? CheckpointNote = null,
    [property: Id(11)] Guid Incarnation = default,
    [property: Id(12)] Training.EvalMetrics? LastEval = null,
    [property: Id(13)] string? EndNote = null);   // why a job finished before its last step (early stopping)
