using Parquet;
using Parquet.Schema;
using static TorchSharp.torch;

namespace Orchestrator.TestKit;

/// <summary>Writes real Parquet files with Parquet.Net, column by column, in row groups of a chosen size.</summary>
public static class ParquetFiles
{
    /// <summary>One column: its schema field and how it writes rows [start, start + count) of itself.</summary>
    public sealed record Column(Field Field, Func<ParquetRowGroupWriter, int, int, Task> Write);

    public static void Write(string path, int rows, int rowGroupRows, params Column[] columns) => Task.Run(async () =>
    {
        await using var file = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(columns.Select(c => c.Field)), file);
        for (int start = 0; start < rows; start += rowGroupRows)
        {
            using var group = writer.CreateRowGroup();
            foreach (var column in columns) await column.Write(group, start, Math.Min(rowGroupRows, rows - start));
            group.CompleteValidate();
        }
    }).GetAwaiter().GetResult();

    /// <summary>A required scalar column of the values.</summary>
    public static Column Scalar<T>(string name, T[] values) where T : struct
    {
        var field = new DataField<T>(name);
        return new(field, (group, start, count) => group.WriteAsync<T>(field, values.AsMemory(start, count)));
    }

    /// <summary>An optional scalar column (pandas writes these), nulls where a value is null.</summary>
    public static Column Nullable<T>(string name, T?[] values) where T : struct
    {
        var field = new DataField<T?>(name);
        return new(field, (group, start, count) => group.WriteAsync<T>(field, values.AsMemory(start, count)));
    }

    public static Column Strings(string name, string[] values)
    {
        var field = new DataField<string>(name);
        return new(field, (group, start, count) => group.WriteAsync(field, values[start..(start + count)]));
    }

    /// <summary>
    /// A list column: row r holds <paramref name="rows"/>[r] (the lists may differ in length). Optional elements, as
    /// pyarrow writes them, may be null.
    /// </summary>
    public static Column List<T>(string name, T[][] rows, bool optionalElements = false, (int Row, int Index)? nullAt = null) where T : struct
    {
        DataField element = optionalElements ? new DataField<T?>("element") : new DataField<T>("element");
        return new(new ListField(name, element), (group, start, count) =>
        {
            var picked = rows[start..(start + count)];
            T?[] values = [.. picked.SelectMany((row, r) => row.Select((v, k) => (start + r, k) == nullAt ? null : (T?)v))];
            int[] repetition = [.. picked.SelectMany(row => row.Select((_, k) => k == 0 ? 0 : 1))];
            return group.WriteAsync<T>(element, values, repetition);
        });
    }

    /// <summary>The rows of a 2-D tensor as arrays.</summary>
    public static T[][] Rows<T>(Tensor matrix) where T : unmanaged
    {
        var flat = matrix.contiguous().data<T>().ToArray();
        int width = (int)matrix.shape[1];
        return [.. Enumerable.Range(0, (int)matrix.shape[0]).Select(r => flat[(r * width)..((r + 1) * width)])];
    }

    /// <summary>Column <paramref name="k"/> of a 2-D tensor.</summary>
    public static T[] ColumnOf<T>(Tensor matrix, int k) where T : unmanaged => matrix.select(1, k).contiguous().data<T>().ToArray();
}
