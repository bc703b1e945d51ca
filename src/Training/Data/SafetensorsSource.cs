using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Batches from a .safetensors file holding "features" (S, D_feat) and "targets" (S, N, D_out), read in the
/// <see cref="ShuffledRows"/> order with the file as one block: epoch e visits the T rows trained on in a permutation
/// seeded by (Data.DataSeed, e), and batch i takes positions [i*B, (i+1)*B) of the concatenated epochs, so batch i
/// depends only on (seed, i). The whole file is loaded (on a GPU when it fits: <see cref="SampleTensors"/>).
/// </summary>
public sealed class SafetensorsSource : IBatchSource, ISampleRows
{
    public const string FeaturesName = "features";
    public const string TargetsName = "targets";

    readonly SampleTensors samples;
    readonly ShuffledRows order;

    /// <summary>Where batches are gathered: the GPU the samples were moved to, or the CPU.</summary>
    public Device Device => samples.Device;

    public long Rows => samples.Rows;

    /// <param name="trainRows">
    /// T: batches use the file's first T rows only; validation holds out the rest. By default the rows the spec's
    /// Validation.Fraction leaves.
    /// </param>
    public SafetensorsSource(JobSpec spec, Device? device = null, long? trainRows = null)
    {
        string path = BatchSources.DataPath(spec);
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
            long train = ShuffledRows.CheckTrainRows(trainRows, f.shape[0], spec.Validation.Fraction, path);
            order = new ShuffledRows(spec.Data.DataSeed, spec.BatchSize, [f.shape[0]], train);
            samples = SampleTensors.Place(f, t, spec.DType, device);
        }
        finally
        {
            foreach (var tensor in tensors.Values) tensor.Dispose();
        }
    }

    public Batch Get(long index) => samples.Select(order.Batch(index));

    public Batch ReadRows(long start, long count) => samples.Read(start, count);

    static Tensor Require(Dictionary<string, Tensor> tensors, string name, string path) =>
        tensors.TryGetValue(name, out var t) ? t
            : throw new InvalidDataException($"{path}: no tensor named '{name}' (found: {string.Join(", ", tensors.Keys)}).");

    static string Dims(Tensor t) => string.Join(", ", t.shape);

    public void Dispose() => samples.Dispose();
}
