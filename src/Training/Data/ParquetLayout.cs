using System.Runtime.InteropServices;
using Parquet;
using Parquet.Data;
using Parquet.Schema;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// How one Parquet file's columns make samples (<see cref="ParquetColumns"/>): each named column is found in the
/// schema, checked to hold numbers (float, double, int32, int64), scalar or in a list, and given its width; a row
/// group then decodes to features (rows, D_feat) and targets (rows, N, D_out) in the job's dtype, refusing nulls and
/// lists of the wrong length by column, row and file.
/// </summary>
sealed class ParquetLayout
{
    sealed record Column(string Name, DataField Field, bool IsList, int Width);

    static readonly Dictionary<Type, string> NumberTypes = new()
    {
        [typeof(double)] = "double", [typeof(float)] = "float", [typeof(int)] = "int32", [typeof(long)] = "int64",
    };

    readonly string path;
    readonly ModelShape shape;
    readonly ScalarType dtype;
    readonly Column[] features;
    readonly Column[] targets;

    /// <param name="targetNames">The target columns; null for a file read for its features only (prediction), which may have none.</param>
    ParquetLayout(ParquetSchema schema, IReadOnlyList<string> featureNames, IReadOnlyList<string>? targetNames, ModelShape shape, ScalarType dtype, string path)
    {
        this.path = path;
        this.shape = shape;
        this.dtype = dtype;
        features = Resolve(schema, featureNames, shape.Features, $"Shape.Features = {shape.Features}", "Data.Columns.Features");
        targets = targetNames is null ? [] : Resolve(schema, targetNames, shape.Groups * shape.Output,
            $"Shape.Groups × Shape.Output = {shape.Groups} × {shape.Output}", "Data.Columns.Targets");
    }

    public ParquetLayout(ParquetSchema schema, ParquetColumns names, ModelShape shape, ScalarType dtype, string path)
        : this(schema, names.Features, names.Targets, shape, dtype, path) { }

    /// <summary>A layout of the feature columns <paramref name="featureNames"/> alone: <see cref="DecodeFeatures"/> only.</summary>
    public static ParquetLayout FeaturesOnly(ParquetSchema schema, IReadOnlyList<string> featureNames, ModelShape shape, ScalarType dtype, string path) =>
        new(schema, featureNames, null, shape, dtype, path);

    /// <summary>The first row of each row group of <paramref name="file"/>, then the file's row count: (G + 1).</summary>
    public static long[] GroupStarts(ParquetReader file)
    {
        var starts = new long[file.RowGroupCount + 1];
        for (int g = 0; g < file.RowGroupCount; g++) starts[g + 1] = starts[g] + file.OpenRowGroupReader(g).RowCount;
        return starts;
    }

    /// <summary>Bytes of one decoded sample: D_feat + N*D_out values in the job's dtype.</summary>
    public long RowBytes => (shape.Features + (long)shape.Groups * shape.Output) * Kernels.DTypeNames.ElementSize(dtype);

    /// <summary>One row group's samples, on the CPU; <paramref name="firstRow"/> is its first row's number in the file (for messages).</summary>
    public SampleTensors Decode(ParquetRowGroupReader group, long firstRow)
    {
        if (targets.Length == 0) throw new InvalidOperationException("this layout reads features only.");
        using var scope = NewDisposeScope();
        long rows = group.RowCount;
        var f = DecodeFeatures(group, firstRow);                                                          // (rows, D_feat)
        var t = cat(targets.Select(c => Read(group, c, rows, firstRow)).ToArray(), 1)
            .reshape(rows, shape.Groups, shape.Output);                                                   // (rows, N, D_out)
        return new SampleTensors(f, t);
    }

    /// <summary>One row group's features (rows, D_feat) on the CPU; the caller owns them.</summary>
    public Tensor DecodeFeatures(ParquetRowGroupReader group, long firstRow)
    {
        using var scope = NewDisposeScope();
        return cat(features.Select(c => Read(group, c, group.RowCount, firstRow)).ToArray(), 1).MoveToOuterDisposeScope();
    }

    /// <summary>Waits for Parquet.Net's asynchronous reads on the thread pool: a grain's scheduler must not be blocked on its own continuations.</summary>
    public static T Await<T>(Func<Task<T>> work) => Task.Run(work).GetAwaiter().GetResult();

    /// <inheritdoc cref="Await{T}"/>
    public static void Await(Func<Task> work) => Task.Run(work).GetAwaiter().GetResult();

    /// <summary>Column <paramref name="column"/> of the group as (rows, width) in the job's dtype.</summary>
    Tensor Read(ParquetRowGroupReader group, Column column, long rows, long firstRow)
    {
        using var raw = Await(() => group.ReadRawColumnDataBaseAsync(column.Field, default).AsTask());
        if (column.Field.MaxDefinitionLevel > 0 && raw.DefinitionLevels.IndexOfAnyExcept(column.Field.MaxDefinitionLevel) is var missing and >= 0)
            throw new InvalidDataException($"{path}: column '{column.Name}' has no value in row {firstRow + RowOf(raw, column, missing)} " +
                                           "(a null, or a null or empty list); fill or drop missing values before training.");
        if (column.IsList) CheckLengths(raw.RepetitionLevels, column, firstRow);
        long values = rows * column.Width;
        var native = raw switch
        {
            RawColumnData<double> d => Copy(d.Values, values, ScalarType.Float64),
            RawColumnData<float> d => Copy(d.Values, values, ScalarType.Float32),
            RawColumnData<int> d => Copy(d.Values, values, ScalarType.Int32),
            RawColumnData<long> d => Copy(d.Values, values, ScalarType.Int64),
            _ => throw new InvalidDataException($"{path}: column '{column.Name}' decoded as {raw.GetType().Name}, not numbers."),
        };
        return native.reshape(rows, column.Width).to(dtype);
    }

    static Tensor Copy<T>(Span<T> values, long count, ScalarType type) where T : unmanaged
    {
        var t = empty([count], type);
        MemoryMarshal.AsBytes(values[..(int)count]).CopyTo(t.bytes);
        return t;
    }

    /// <summary>Every row's list holds exactly the column's width of values (a row starts where the repetition level is 0).</summary>
    void CheckLengths(Span<int> repetition, Column column, long firstRow)
    {
        long row = -1;
        int length = 0;
        for (int k = 0; k <= repetition.Length; k++)
        {
            if (k < repetition.Length && repetition[k] != 0)
            {
                length++;
                continue;
            }
            if (row >= 0 && length != column.Width)
                throw new InvalidDataException($"{path}: column '{column.Name}' holds a list of {length} values in row {firstRow + row}, " +
                                               $"but every row's list must hold {column.Width} (the layout of {NamesOf(column)}).");
            row++;
            length = 1;
        }
    }

    string NamesOf(Column column) => features.Contains(column) ? "Data.Columns.Features" : "Data.Columns.Targets";

    /// <summary>The row of value entry <paramref name="entry"/>: entries of a list column run row after row.</summary>
    static long RowOf(RawColumnData raw, Column column, int entry) =>
        column.IsList ? raw.RepetitionLevels[..(entry + 1)].Count(0) - 1 : entry;

    Column[] Resolve(ParquetSchema schema, IReadOnlyList<string> names, int width, string need, string setting)
    {
        var found = names.Select(name => Find(schema, name, setting)).ToArray();
        int scalars = found.Count(c => !c.IsList), lists = found.Length - scalars;
        int rest = width - scalars;
        if (lists == 0 ? rest != 0 : rest < lists || rest % lists != 0)
            throw new InvalidDataException($"{path}: {setting} names {scalars} scalar and {lists} list columns ({string.Join(", ", names)}), " +
                                           $"which cannot give the {need} values per row the job needs: scalar columns give one value each " +
                                           "and the list columns share the rest equally.");
        return [.. found.Select(c => c with { Width = c.IsList ? rest / lists : 1 })];
    }

    /// <summary>How a user knows the column's type: Parquet.Net reads strings and binary as memory of chars and bytes.</summary>
    static string TypeName(Type clrType) =>
        clrType == typeof(ReadOnlyMemory<char>) || clrType == typeof(string) ? "string"
        : clrType == typeof(ReadOnlyMemory<byte>) || clrType == typeof(byte[]) ? "binary"
        : clrType.Name;

    Column Find(ParquetSchema schema, string name, string setting)
    {
        var field = schema.Fields.FirstOrDefault(f => f.Name == name)
            ?? throw new InvalidDataException($"{path}: no column named '{name}' ({setting}); the file has: {string.Join(", ", schema.Fields.Select(f => f.Name))}.");
        var (data, isList) = field switch
        {
            DataField { MaxRepetitionLevel: 0 } d => (d, false),
            DataField { MaxRepetitionLevel: 1 } d => (d, true),
            ListField { Item: DataField { MaxRepetitionLevel: 1 } d } => (d, true),
            _ => throw new InvalidDataException($"{path}: column '{name}' is a {field.SchemaType} column; {setting} takes columns of numbers or lists of numbers."),
        };
        if (!NumberTypes.ContainsKey(data.ClrType))
            throw new InvalidDataException($"{path}: column '{name}' holds {TypeName(data.ClrType)} values; columns must hold {string.Join(", ", NumberTypes.Values)} numbers.");
        return new Column(name, data, isList, 0);
    }
}
