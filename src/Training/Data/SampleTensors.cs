using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Samples held in memory, features (S, D_feat) and targets (S, N, D_out) in the job's dtype: a whole file, or one
/// decoded row group of a file that streams. Batches are gathered from them by row number.
/// </summary>
/// <remarks>
/// Given a GPU whose free memory holds the samples several times over (<see cref="ResidentShare"/>), they move there
/// once and batches are gathered on the device: no host work and no host-to-device copy per step. Otherwise they stay
/// on the CPU (and a <see cref="PrefetchingBatchSource"/> hides the copy).
/// </remarks>
public sealed class SampleTensors : IDisposable
{
    /// <summary>The samples live on the GPU when they take at most this share of its free memory.</summary>
    public const double ResidentShare = 0.25;

    readonly Tensor features;   // (S, D_feat)
    readonly Tensor targets;    // (S, N, D_out)

    /// <summary>Takes the tensors as they are (the caller gives them up).</summary>
    public SampleTensors(Tensor features, Tensor targets)
    {
        this.features = features.DetachFromDisposeScope();
        this.targets = targets.DetachFromDisposeScope();
    }

    /// <summary>
    /// Copies of <paramref name="features"/> and <paramref name="targets"/> in <paramref name="dtype"/>, on
    /// <paramref name="device"/> when it is a GPU they fit on (<see cref="ResidentShare"/>), else on the CPU.
    /// </summary>
    public static SampleTensors Place(Tensor features, Tensor targets, ScalarType dtype, Device? device)
    {
        long bytes = (features.numel() + targets.numel()) * Kernels.DTypeNames.ElementSize(dtype);
        var home = device is { type: DeviceType.CUDA } gpu && bytes <= ResidentShare * Kernels.Cuda.CudaDevice.For(gpu.index).MemoryInfo().Free ? gpu : CPU;
        return new SampleTensors(features.to(dtype, home), targets.to(dtype, home));
    }

    /// <summary>Where batches are gathered: the GPU the samples were moved to, or the CPU.</summary>
    public Device Device => features.device;

    /// <summary>S.</summary>
    public long Rows => features.shape[0];

    /// <summary>The samples at <paramref name="rows"/>, in that order, on <see cref="Device"/>; the caller owns them.</summary>
    public Batch Select(long[] rows)
    {
        using var scope = NewDisposeScope();
        // On a GPU the row numbers go through pinned memory with a non-blocking copy: a pageable copy would wait for
        // every kernel queued before it (the previous step's backward) before the host could queue this step.
        var picked = Device.type == DeviceType.CUDA ? tensor(rows).pin_memory().to(Device, non_blocking: true) : tensor(rows);
        return new Batch(features.index_select(0, picked).MoveToOuterDisposeScope(), targets.index_select(0, picked).MoveToOuterDisposeScope());
    }

    /// <summary>Rows [start, start + count), copied to the CPU; the caller owns them.</summary>
    public Batch Read(long start, long count)
    {
        CheckRange(start, count, Rows);
        using var scope = NewDisposeScope();
        return new Batch(
            features.narrow(0, start, count).to(CPU, copy: true).MoveToOuterDisposeScope(),
            targets.narrow(0, start, count).to(CPU, copy: true).MoveToOuterDisposeScope());
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless [start, start + count) lies within [0, rows).</summary>
    public static void CheckRange(long start, long count, long rows)
    {
        if (start < 0 || count < 0 || start > rows - count)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) are not within the file's {rows} rows.");
    }

    public void Dispose()
    {
        features.Dispose();
        targets.Dispose();
    }
}
