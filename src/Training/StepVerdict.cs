using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// Whether a step may change the model: its loss and how many of its features and targets are NaN or infinite, copied
/// to the host without waiting (into pinned memory from a GPU) as soon as the loss is queued, and read only once the
/// rest of the step's device work is queued behind it. The read is then the step's one host synchronisation, and the
/// GPU never idles waiting for it. On CUDA the counts are one fused pass over each input. Owns its tensor.
/// </summary>
public sealed class StepVerdict : IDisposable
{
    readonly Tensor onHost;   // (3) float64: loss, non-finite features, non-finite targets
    readonly StreamFence? fence;

    /// <summary>
    /// Queues the verdict. <paramref name="fence"/> (a GPU's, null on the CPU, where the copy is synchronous) marks where
    /// the copy was queued.
    /// </summary>
    public StepVerdict(Tensor loss, Tensor features, Tensor targets, StreamFence? fence)
    {
        using var scope = NewDisposeScope();
        var onDevice = zeros([3], ScalarType.Float64, loss.device);
        onDevice.narrow(0, 0, 1).copy_(loss.reshape(1));
        CountNonFinite(features, onDevice.narrow(0, 1, 1));
        CountNonFinite(targets, onDevice.narrow(0, 2, 1));
        onHost = onDevice.to(CPU, non_blocking: fence is not null).DetachFromDisposeScope();
        fence?.Record();
        this.fence = fence;
    }

    /// <summary>
    /// Waits for the copy, then the loss and null, or the loss and why batch <paramref name="batch"/> is rejected (naming
    /// the tensor and its count of bad values, or the non-finite loss with what to try).
    /// </summary>
    public (double Loss, string? Rejection) Read(long batch, JobSpec job)
    {
        fence?.Wait();
        var read = onHost.data<double>().ToArray();
        string? rejection = read[1] > 0 ? BadBatchException.NonFinite((long)read[1], "features", batch)
            : read[2] > 0 ? BadBatchException.NonFinite((long)read[2], "targets", batch)
            : double.IsFinite(read[0]) ? null
            : $"batch {batch} is rejected: its loss is {read[0]} (finite inputs: the model diverged or overflowed; try a smaller " +
              $"learning rate than {job.Optimizer.LearningRate} or a wider dtype than {job.DType}); the model is unchanged.";
        return (read[0], rejection);
    }

    static void CountNonFinite(Tensor x, Tensor count)
    {
        if (FusedElementwise.Supports(x)) FusedElementwise.CountNonFinite(x, count);
        else count.copy_(x.isfinite().logical_not().sum().to(ScalarType.Float64).reshape(1));
    }

    public void Dispose() => onHost.Dispose();
}
