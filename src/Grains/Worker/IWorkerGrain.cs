using Orchestrator.Grains.Transport;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Grains;

/// <summary>
/// Owns one device's share of a job: the tower weights and AdamW state of a contiguous group range. Keyed by a
/// <see cref="Placement.WorkerKey"/>, which pins it to its silo and device. Replies in the payload kind it received.
/// </summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    /// <summary>Builds (or rebuilds) the shard from the job's seed; any previous state is dropped.</summary>
    [ResponseTimeout("00:10:00")]
    Task InitAsync(WorkerSetup setup);

    /// <summary>x slice (B, count, D_in) -> y slice (B, count, D_out); keeps activations for the backward.</summary>
    [ResponseTimeout("00:10:00")]
    Task<TensorPayload> ForwardAsync(TensorPayload x);

    /// <summary>
    /// dY slice (B, count, D_out) -> dX slice (B, count, D_in). The shard's AdamW step waits: the next call that uses or
    /// reads the weights (forward, checkpoint, export) applies it, <see cref="DiscardAsync"/> drops it. So the
    /// coordinator can send dY before it has read the loss, and still reject the step before any parameter changes.
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task<TensorPayload> BackwardAsync(TensorPayload dY);

    /// <summary>The sum of squares of the gradients the last backward left waiting (the job's global norm for clipping adds these up).</summary>
    Task<double> PendingSquaredNormAsync();

    /// <summary>Applies the waiting update now, its gradients scaled by <paramref name="gradientScale"/> (the job clips them).</summary>
    Task AcceptAsync(double gradientScale);

    /// <summary>x slice (B, count, D_in) -> y slice (B, count, D_out) for evaluation: nothing is kept, no gradient follows.</summary>
    [ResponseTimeout("00:10:00")]
    Task<TensorPayload> InferAsync(TensorPayload x);

    /// <summary>Drops the activations the last forward kept and the update the last backward left waiting (its step was rejected); the weights stay unchanged.</summary>
    Task DiscardAsync();

    /// <summary>Writes the shard's weights and AdamW state into the pending checkpoint of <paramref name="ticket"/>.</summary>
    [ResponseTimeout("00:10:00")]
    Task<ShardFile> CheckpointAsync(CheckpointTicket ticket);

    /// <summary>Copies of the shard's weights as message payloads (any caller, any silo).</summary>
    Task<Dictionary<string, TensorPayload>> ExportAsync();

    /// <summary>Releases the shard and deactivates.</summary>
    /// <remarks>
    /// Only the owner of the current setup stops the worker: a stale coordinator activation (a duplicate that outlived
    /// a silo failure and is being deactivated) must not stop the workers a new coordinator has taken over.
    /// </remarks>
    Task StopAsync(Guid owner);
}
