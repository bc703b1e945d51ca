using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// Whether a step may change the model: its loss and whether its features and targets are all finite, copied to the
/// host without waiting (into pinned memory from a GPU) as soon as the loss is queued, and read only once the rest of
/// the step's device work is queued behind it. The read is then the step's one host synchronisation, and the GPU never
/// idles waiting for it. Owns its tensors.
/// </summary>
public sealed class StepVerdict : IDisposable
{
    readonly Tensor onHost;   // (3) float64: loss, features finite (1 or 0), targets finite (1 or 0)
    readonly StreamFence? fence;
    readonly Tensor features, targets;

    /// <summary>
    /// Queues the verdict of batch <paramref name="batch"/>. <paramref name="fence"/> (a GPU's, null on the CPU, where the
    /// copy is synchronous) marks where the copy was queued; the verdict keeps references to the inputs to name bad values.
    /// </summary>
    public StepVerdict(Tensor loss, Tensor features, Tensor targets, StreamFence? fence)
    {
        using var scope = NewDisposeScope();
        var finite = stack([features.isfinite().all(), targets.isfinite().all()]).to(ScalarType.Float64);   // (2)
        onHost = cat([loss.reshape(1), finite]).to(CPU, non_blocking: fence is not null).DetachFromDisposeScope();
        fence?.Record();
        this.fence = fence;
        this.features = features.alias().DetachFromDisposeScope();
        this.targets = targets.alias().DetachFromDisposeScope();
    }

    /// <summary>
    /// Waits for the copy, then the loss and null, or the loss and why batch <paramref name="batch"/> is rejected (naming
    /// the tensor and its bad values, or the non-finite loss with what to try).
    /// </summary>
    public (double Loss, string? Rejection) Read(long batch, JobSpec job)
    {
        fence?.Wait();
        var read = onHost.data<double>().ToArray();
        string? rejection = read[1] == 0 ? BadBatchException.NonFinite(features, "features", batch)
            : read[2] == 0 ? BadBatchException.NonFinite(targets, "targets", batch)
            : double.IsFinite(read[0]) ? null
            : $"batch {batch} is rejected: its loss is {read[0]} (finite inputs: the model diverged or overflowed; try a smaller " +
              $"learning rate than {job.Optimizer.LearningRate} or a wider dtype than {job.DType}); the model is unchanged.";
        return (read[0], rejection);
    }

    public void Dispose()
    {
        onHost.Dispose();
        features.Dispose();
        targets.Dispose();
    }
}
