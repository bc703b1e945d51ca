using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>
/// The features of a data file `predict` reads, a run of rows at a time in file order, so that only one run is in
/// memory however large the file. Checked against the job when opened.
/// </summary>
public interface IFeatureRows : IDisposable
{
    /// <summary>S: the samples in the file.</summary>
    long Rows { get; }

    /// <summary>Features (count, D_feat) of rows [start, start + count), floating point, on the CPU; the caller owns them.</summary>
    Tensor Read(long start, long count);
}

public static class FeatureRows
{
    /// <summary>
    /// The features of <paramref name="path"/> for <paramref name="job"/> (read from a checkpoint's manifest, before its
    /// weights are loaded): "features" of a .safetensors file in its dtype, or the <paramref name="columns"/> of a
    /// .parquet file (as --feature-columns names them for training) decoded to <paramref name="dtype"/>. Any targets are
    /// left unread. Throws <see cref="FileNotFoundException"/> naming --data when there is no file, and
    /// <see cref="InvalidDataException"/> naming the file when it does not fit the job.
    /// </summary>
    public static IFeatureRows Open(string path, JobSpec job, IReadOnlyList<string> columns, ScalarType dtype)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--data: file '{path}' does not exist.");
        return DataSpec.SourceFor(path) == "parquet" ? new ParquetFeatureRows(path, job, columns, dtype) : new SafetensorsFeatureRows(path, job);
    }
}
