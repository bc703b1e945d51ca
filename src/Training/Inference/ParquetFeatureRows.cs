using Orchestrator.Training.Data;
using Parquet;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>
/// The feature columns of a Parquet file (<see cref="ParquetColumns"/>), decoded one row group at a time as runs of
/// rows need them: runs are read in file order, so the row group decoded last is kept for the next run and freed for
/// the one after. Memory holds one row group and one run.
/// </summary>
sealed class ParquetFeatureRows : IFeatureRows
{
    readonly ParquetReader file;
    readonly ParquetLayout layout;
    readonly long[] groupStarts;   // (G + 1)
    (int Group, Tensor Features)? decoded;

    public ParquetFeatureRows(string path, JobSpec job, IReadOnlyList<string> columns, ScalarType dtype)
    {
        RegularFile.Require(path, "Parquet file");
        file = ParquetSource.Open(path);
        try
        {
            layout = ParquetLayout.FeaturesOnly(file.Schema, columns, job.Shape, dtype, path);
            groupStarts = ParquetLayout.GroupStarts(file);
            if (Rows == 0) throw new InvalidDataException($"{path}: the file holds no samples.");
        }
        catch
        {
            ParquetSource.Close(file);
            throw;
        }
    }

    public long Rows => groupStarts[^1];

    public Tensor Read(long start, long count)
    {
        SampleTensors.CheckRange(start, count, Rows);
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (long row = start, end = start + count; row < end;)
        {
            int g = ShuffledRows.Containing(groupStarts, row);
            while (groupStarts[g + 1] <= row) g++;   // past empty row groups, which share their start with the next
            long stop = Math.Min(groupStarts[g + 1], end);
            parts.Add(Group(g).narrow(0, row - groupStarts[g], stop - row));
            row = stop;
        }
        return (parts.Count == 1 ? parts[0].clone() : cat(parts)).MoveToOuterDisposeScope();
    }

    /// <summary>Row group <paramref name="g"/>'s features, decoded unless they are the ones decoded last.</summary>
    Tensor Group(int g)
    {
        if (decoded is { Group: var held, Features: var features } && held == g) return features;
        decoded?.Features.Dispose();
        decoded = null;
        var fresh = layout.DecodeFeatures(file.OpenRowGroupReader(g), groupStarts[g]).DetachFromDisposeScope();
        decoded = (g, fresh);
        return fresh;
    }

    public void Dispose()
    {
        decoded?.Features.Dispose();
        ParquetSource.Close(file);
    }
}
