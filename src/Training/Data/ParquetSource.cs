using Parquet;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Batches from a Parquet file whose columns hold the samples as <see cref="ParquetColumns"/> describes, read in the
/// <see cref="ShuffledRows"/> order with the file's row groups as blocks: epoch e visits the row groups in a
/// permutation seeded by (Data.DataSeed, e) and the rows of group g in one seeded by (Data.DataSeed, e, g), so batch i
/// depends only on (seed, i) and the file, and touches one or two row groups.
/// </summary>
/// <remarks>
/// Every row group is decoded and checked when the source is created, so a missing or mistyped column, a null or a
/// list of the wrong length fails before training. A file whose decoded samples fit the memory budget
/// (<see cref="WholeFileShare"/> of the memory available) is then held whole, like a safetensors file (on a GPU when
/// it fits there); a larger one streams: batches decode the row groups they need, and the last few decoded stay
/// cached (<see cref="RowGroupCache"/>). Either way batch i is the same. A row group must fit in memory.
/// </remarks>
public sealed class ParquetSource : IBatchSource, ISampleRows
{
    /// <summary>A file is loaded whole when its decoded samples take at most this share of the memory available.</summary>
    public const double WholeFileShare = 0.25;
    const int MinCachedGroups = 2, MaxCachedGroups = 8;   // two: a batch that straddles groups decodes each once

    readonly ModelShape shape;
    readonly ScalarType dtype;
    readonly ParquetLayout layout;
    readonly ShuffledRows order;
    readonly long[] groupStarts;   // (G + 1): group g holds file rows [groupStarts[g], groupStarts[g + 1])
    readonly SampleTensors? whole;
    readonly ParquetReader? reader;   // open while streaming
    readonly RowGroupCache? cache;
    readonly Lock gate = new();       // the reader and the cache: training and validation may read at once

    /// <summary>Where batches are gathered: a GPU the whole file was moved to, or the CPU.</summary>
    public Device Device => whole?.Device ?? CPU;

    public long Rows => groupStarts[^1];

    /// <summary>Whether batches decode row groups as they need them (the file did not fit the budget), rather than gather from the whole file.</summary>
    public bool Streams => whole is null;

    /// <param name="trainRows">T: batches use the file's first T rows only (all by default); validation holds out the rest.</param>
    /// <param name="wholeFileBytes">Load the file whole when its decoded samples take at most this many bytes (default: <see cref="WholeFileShare"/> of the memory available).</param>
    public ParquetSource(JobSpec spec, Device? device = null, long? trainRows = null, long? wholeFileBytes = null)
    {
        shape = spec.Shape;
        dtype = spec.DType;
        string path = BatchSources.DataPath(spec);
        RegularFile.Require(path, "Parquet file");
        var file = Open(path);
        try
        {
            layout = new ParquetLayout(file.Schema, spec.Data.Columns, shape, dtype, path);
            groupStarts = ParquetLayout.GroupStarts(file);
            var groupRows = groupStarts.Skip(1).Select((end, g) => end - groupStarts[g]).ToArray();
            if (Rows == 0) throw new InvalidDataException($"{path}: the file holds no samples.");
            order = new ShuffledRows(spec.Data.DataSeed, spec.BatchSize, groupRows, ShuffledRows.CheckTrainRows(trainRows, Rows, spec.Validation.Fraction, path));
            long budget = wholeFileBytes ?? (long)(WholeFileShare * GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
            if (Rows * layout.RowBytes <= budget)
            {
                whole = LoadWhole(file, device);
                Close(file);
            }
            else
            {
                long groupBytes = Math.Max(1, groupRows.Max() * layout.RowBytes);
                cache = new RowGroupCache(Decode, (int)Math.Clamp(budget / groupBytes, MinCachedGroups, MaxCachedGroups));
                reader = file;
                for (int g = 0; g < file.RowGroupCount; g++) cache.Get(g);   // checks every group now; the last few stay decoded
            }
        }
        catch
        {
            cache?.Dispose();
            Close(file);
            throw;
        }
    }

    public Batch Get(long index)
    {
        var rows = order.Batch(index);
        if (whole is not null) return whole.Select(rows);
        lock (gate) return Gather(rows);
    }

    public Batch ReadRows(long start, long count)
    {
        SampleTensors.CheckRange(start, count, Rows);
        if (whole is not null) return whole.Read(start, count);
        lock (gate)
        {
            using var scope = NewDisposeScope();
            var parts = new List<Batch>();
            long row = start, end = start + count;
            do
            {
                int g = ShuffledRows.Containing(groupStarts, Math.Min(row, Rows - 1));
                long stop = Math.Min(groupStarts[g + 1], end);
                parts.Add(Cache.Get(g).Read(row - groupStarts[g], stop - row));
                row = stop;
            } while (row < end);
            return new Batch(
                cat(parts.Select(p => p.Features).ToArray()).MoveToOuterDisposeScope(),
                cat(parts.Select(p => p.Targets).ToArray()).MoveToOuterDisposeScope());
        }
    }

    RowGroupCache Cache => cache ?? throw new InvalidOperationException("the file was loaded whole; it has no row group cache.");

    /// <summary>The samples at file rows <paramref name="rows"/>, in that order, from the row groups that hold them.</summary>
    Batch Gather(long[] rows)
    {
        using var scope = NewDisposeScope();
        var features = empty([rows.Length, shape.Features], dtype);              // (B, D_feat)
        var targets = empty([rows.Length, shape.Groups, shape.Output], dtype);   // (B, N, D_out)
        var byGroup = rows.Select((row, position) => (Group: ShuffledRows.Containing(groupStarts, row), Row: row, Position: (long)position))
            .GroupBy(r => r.Group);
        foreach (var part in byGroup)
        {
            var picked = Cache.Get(part.Key).Select([.. part.Select(r => r.Row - groupStarts[part.Key])]);
            var positions = tensor(part.Select(r => r.Position).ToArray());
            features.index_copy_(0, positions, picked.Features);
            targets.index_copy_(0, positions, picked.Targets);
        }
        return new Batch(features.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    SampleTensors LoadWhole(ParquetReader file, Device? device)
    {
        using var scope = NewDisposeScope();
        var features = empty([Rows, shape.Features], dtype);              // (S, D_feat)
        var targets = empty([Rows, shape.Groups, shape.Output], dtype);   // (S, N, D_out)
        for (int g = 0; g < file.RowGroupCount; g++)
        {
            using var group = layout.Decode(file.OpenRowGroupReader(g), groupStarts[g]);
            using var all = group.Read(0, group.Rows);
            features.narrow(0, groupStarts[g], group.Rows).copy_(all.Features);
            targets.narrow(0, groupStarts[g], group.Rows).copy_(all.Targets);
        }
        return SampleTensors.Place(features, targets, dtype, device);
    }

    SampleTensors Decode(int g) =>
        layout.Decode((reader ?? throw new InvalidOperationException("the file is closed.")).OpenRowGroupReader(g), groupStarts[g]);

    internal static ParquetReader Open(string path)
    {
        try
        {
            return ParquetLayout.Await(() => ParquetReader.CreateAsync(path));
        }
        catch (Exception e) when (e is IOException or ParquetException && e is not FileNotFoundException)
        {
            throw new InvalidDataException($"{path}: not a readable Parquet file ({e.Message}).");
        }
    }

    internal static void Close(ParquetReader file) => ParquetLayout.Await(() => file.DisposeAsync().AsTask());

    public void Dispose()
    {
        whole?.Dispose();
        cache?.Dispose();
        if (reader is not null) Close(reader);
    }
}
