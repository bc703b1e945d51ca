using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Batches from a .safetensors file holding "features" (S, D_feat) and "targets" (S, N, D_out), read in a shuffled
/// order: epoch e visits the T training samples (the first T of S; the rest are held out for validation) in a
/// permutation seeded by (Data.DataSeed, e), and batch i takes positions [i*B, (i+1)*B) of the concatenated epochs, so
/// batch i depends only on (seed, i).
/// </summary>
/// <remarks>
/// Given a GPU whose free memory holds the samples several times over (<see cref="ResidentShare"/>), the samples move
/// there once and batches are gathered on the device: no host work and no host-to-device copy per step. Otherwise
/// they stay on the CPU (and a <see cref="PrefetchingBatchSource"/> hides the copy).
/// </remarks>
public sealed class SafetensorsSource : IBatchSource, ISampleRows
{
    public const string FeaturesName = "features";
    public const string TargetsName = "targets";
    /// <summary>The samples live on the GPU when they take at most this share of its free memory.</summary>
    public const double ResidentShare = 0.25;

    readonly JobSpec spec;
    readonly Tensor features;   // (S, D_feat) in the job's dtype
    readonly Tensor targets;    // (S, N, D_out)
    readonly long samples;      // T: the leading rows batches are drawn from
    (long Epoch, long[] Order) permutation = (-1, []);

    /// <summary>Where batches are gathered: the GPU the samples were moved to, or the CPU.</summary>
    public Device Device => features.device;

    /// <summary>S: every sample of the file, held-out ones included.</summary>
    public long Rows => features.shape[0];

    /// <summary>The job's training file, the last <see cref="ValidationSpec.Fraction"/> of it held out.</summary>
    public SafetensorsSource(JobSpec spec, Device? device = null)
        : this(spec, spec.Data.Path ?? throw new JobSpecException("Data.Path", "is required for safetensors data."), "Data.Path", device,
            spec.Validation.Fraction)
    {
    }

    /// <summary>
    /// The file at <paramref name="path"/> (named <paramref name="field"/> in errors), trained on but for the last
    /// <paramref name="holdOut"/> of its samples.
    /// </summary>
    public SafetensorsSource(JobSpec spec, string path, string field, Device? device, double holdOut)
    {
        this.spec = spec;
        if (!File.Exists(path)) throw new JobSpecException(field, $"file '{path}' does not exist.");
        var tensors = SafeTensors.Read(path);
        try
        {
            var shape = spec.Shape;
            var f = Require(tensors, FeaturesName, path);
            var t = Require(tensors, TargetsName, path);
            if (f.dim() != 2 || f.shape[1] != shape.Features)
                throw new InvalidDataException($"{path}: '{FeaturesName}' is ({Dims(f)}) but the job needs (S, {shape.Features}).");
            if (t.dim() != 3 || t.shape[1] != shape.Groups || t.shape[2] != shape.Output)
                throw new InvalidDataException($"{path}: '{TargetsName}' is ({Dims(t)}) but the job needs (S, {shape.Groups}, {shape.Output}).");
            if (f.shape[0] != t.shape[0])
                throw new InvalidDataException($"{path}: '{FeaturesName}' has {f.shape[0]} samples but '{TargetsName}' has {t.shape[0]}.");
            if (f.shape[0] == 0) throw new InvalidDataException($"{path}: the file holds no samples.");
            if (!f.is_floating_point() || !t.is_floating_point())
                throw new InvalidDataException($"{path}: '{FeaturesName}' and '{TargetsName}' must be floating point; got {f.dtype} and {t.dtype}.");
            samples = HeldOutData.TrainRows(f.shape[0], holdOut, path);
            var dtype = BatchSources.DType(spec);
            var home = device is { type: DeviceType.CUDA } gpu && Fits(gpu, (f.numel() + t.numel()) * Kernels.DTypeNames.ElementSize(dtype)) ? gpu : CPU;
            features = f.to(dtype, home).DetachFromDisposeScope();
            targets = t.to(dtype, home).DetachFromDisposeScope();
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    public Batch Get(long index)
    {
        var rows = new long[spec.BatchSize];
        for (int k = 0; k < rows.Length; k++)
        {
            long position = index * spec.BatchSize + k;
            rows[k] = Order(position / samples)[position % samples];
        }
        using var scope = NewDisposeScope();
        // On a GPU the row numbers go through pinned memory with a non-blocking copy: a pageable copy would wait for
        // every kernel queued before it (the previous step's backward) before the host could queue this step.
        var picked = Device.type == DeviceType.CUDA ? tensor(rows).pin_memory().to(Device, non_blocking: true) : tensor(rows);
        return new Batch(features.index_select(0, picked).MoveToOuterDisposeScope(), targets.index_select(0, picked).MoveToOuterDisposeScope());
    }

    public Batch ReadRows(long start, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(start + count, Rows);
        return new Batch(features.narrow(0, start, count).alias().DetachFromDisposeScope(), targets.narrow(0, start, count).alias().DetachFromDisposeScope());
    }

    static bool Fits(Device gpu, long bytes) => bytes <= ResidentShare * Kernels.Cuda.CudaDevice.For(gpu.index).MemoryInfo().Free;

    long[] Order(long epoch)
    {
        if (permutation.Epoch != epoch)
        {
            using var scope = NewDisposeScope();
            var generator = new Generator(GroupInit.StableSeed(spec.Data.DataSeed, epoch, "shuffle"));
            permutation = (epoch, randperm(samples, generator: generator).data<long>().ToArray());
        }
        return permutation.Order;
    }

    static Tensor Require(Dictionary<string, Tensor> tensors, string name, string path) =>
        tensors.TryGetValue(name, out var t) ? t
            : throw new InvalidDataException($"{path}: no tensor named '{name}' (found: {string.Join(", ", tensors.Keys)}).");

    static string Dims(Tensor t) => string.Join(", ", t.shape);

    public void Dispose()
    {
        features.Dispose();
        targets.Dispose();
    }
}
