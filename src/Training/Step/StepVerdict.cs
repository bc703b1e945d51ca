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
    readonly Tensor onHost;   // (4) float64: loss, non-finite features, non-finite targets, targets outside [0, 1] (counted for BCE only)
    readonly StreamFence? fence;

    /// <summary>
    /// Queues the verdict. <paramref name="fence"/> (a GPU's, null on the CPU, where the copy is synchronous) marks where
    /// the copy was queued.
    /// </summary>
    public StepVerdict(Tensor loss, Tensor features, Tensor targets, StreamFence? fence, bool targetsAreProbabilities = false)
    {
        using var scope = NewDisposeScope();
        var onDevice = zeros([4], ScalarType.Float64, loss.device);
        onDevice.narrow(0, 0, 1).copy_(loss.reshape(1));
        CountNonFinite(features, onDevice.narrow(0, 1, 1));
        CountNonFinite(targets, onDevice.narrow(0, 2, 1));
        if (targetsAreProbabilities) onDevice.narrow(0, 3, 1).copy_(targets.lt(0).logical_or_(targets.gt(1)).sum().to(ScalarType.Float64).reshape(1));
        onHost = onDevice.to(CPU, non_blocking: fence is not null).DetachFromDisposeScope();
        fence?.Record();
        this.fence = fence;
    }

    /// <summary>
    /// Waits for the copy, then the loss and null, or the loss and why batch <paramref name="batch"/> is rejected (naming
    /// the tensor and its count of bad values, or the non-finite loss with what to try). A non-finite loss from finite
    /// inputs is blamed on the inputs when they are so large that the trunk's products overflow <paramref name="job"/>'s
    /// dtype, and on the model otherwise; the inputs' magnitudes are read only on that path.
    /// </summary>
    public (double Loss, string? Rejection) Read(long batch, JobSpec job, Tensor features, Tensor targets)
    {
        fence?.Wait();
        var read = onHost.data<double>().ToArray();
        string? rejection = read[1] > 0 ? BadBatchException.NonFinite((long)read[1], "features", batch)
            : read[2] > 0 ? BadBatchException.NonFinite((long)read[2], "targets", batch)
            : read[3] > 0 ? $"batch {batch} is rejected: {(long)read[3]} of its targets are outside [0, 1], {BadBatchException.ProbabilityTargets}; " +
                            "the model is unchanged."
            : double.IsFinite(read[0]) ? null
            : NonFiniteLoss(read[0], batch, job, features, targets);
        return (read[0], rejection);
    }

    static string NonFiniteLoss(double loss, long batch, JobSpec job, Tensor features, Tensor targets)
    {
        double Largest(Tensor t) => t.abs().max().to(ScalarType.Float64).item<double>();
        var (feature, target) = (Largest(features), Largest(targets));
        // A product of two values above the square root of the dtype's largest number overflows: such inputs are the cause.
        double limit = Math.Sqrt(finfo(features.dtype).max);
        if (Math.Max(feature, target) > limit)
            return $"batch {batch} is rejected: its loss is {loss} although every input is finite: its " +
                   $"{(feature >= target ? $"features reach {feature:G3}" : $"targets reach {target:G3}")}, so large that products of them " +
                   $"overflow {Kernels.DTypeNames.Name(job.DType)} (largest {finfo(features.dtype).max:G3}); scale the data (e.g. standardise each column). The model is unchanged.";
        return $"batch {batch} is rejected: its loss is {loss} (finite inputs, largest |feature| {feature:G3} and |target| {target:G3}: the model " +
               $"diverged or overflowed; try a smaller learning rate than {job.Optimizer.LearningRate} or a wider dtype than {Kernels.DTypeNames.Name(job.DType)}); the model is unchanged.";
    }

    static void CountNonFinite(Tensor x, Tensor count)
    {
        if (FusedElementwise.Supports(x)) FusedElementwise.CountNonFinite(x, count);
        else count.copy_(x.isfinite().logical_not().sum().to(ScalarType.Float64).reshape(1));
    }

    public void Dispose() => onHost.Dispose();
}
