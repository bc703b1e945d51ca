using Orleans.Concurrency;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>
/// Drives one job, keyed by the job's name: owns the trunk, the data and the loss, and exchanges activations and
/// gradients with the workers that own the towers.
/// </summary>
public interface ICoordinatorGrain : IGrainWithStringKey
{
    /// <summary>
    /// Validates the spec, reads its data, finds the cluster's devices, assigns contiguous group ranges and builds
    /// every worker. Throws before any training when the spec, the data or the cluster cannot run the job. With
    /// <paramref name="resume"/>, the trunk and every shard come from the job's latest checkpoint (under
    /// spec.Checkpoint.Directory, written by any number of workers) and training continues at its step.
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task<JobStatus> StartAsync(JobSpec spec, bool resume = false);

    /// <summary>
    /// One training step over every worker. With <paramref name="incarnation"/> (a <see cref="JobSession"/>'s), it runs
    /// only on that coordinator activation: a call meant for one that was lost with its silo is refused by its
    /// successor, not run there as a step its sender has given up on.
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task<StepMetrics> StepAsync(Guid incarnation = default);

    /// <summary>Saves a checkpoint now (between steps); returns its step.</summary>
    [ResponseTimeout("00:10:00")]
    Task<long> CheckpointAsync();

    /// <summary>Answers even while a step runs.</summary>
    [AlwaysInterleave]
    Task<JobStatus> GetStatusAsync();

    /// <summary>Copies of all parameters, towers concatenated over the workers (message payloads).</summary>
    [ResponseTimeout("00:10:00")]
    Task<Dictionary<string, TensorPayload>> GetParametersAsync();

    /// <summary>
    /// Renews the lease of the client that drives the job (see <see cref="JobSpec.LeaseSeconds"/>) when
    /// <paramref name="incarnation"/> is this activation, and returns the status; a status from another incarnation
    /// tells the client that the coordinator it started was lost. Answers even while a step runs.
    /// </summary>
    [AlwaysInterleave, ResponseTimeout("00:00:30")]
    Task<JobStatus> RenewLeaseAsync(Guid incarnation);

    /// <summary>
    /// Checkpoints a running job first (when it has a checkpoint directory and <paramref name="discard"/> is false; a
    /// failed save keeps the job running and throws), then releases the workers and the trunk; the job can be started
    /// again. Returns the status it stopped in.
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task<JobStatus> StopAsync(bool discard = false);
}
