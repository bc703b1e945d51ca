using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// One tensor of a safetensors file read a run of rows (along its first dimension) at a time, straight from the file
/// at the rows' offset: a tensor larger than memory (or than the 2 GiB SafeTensors.Read takes whole) is read holding one run. The header is checked as
/// <see cref="SafeTensors.Read(string)"/> checks it; the file stays open until disposed.
/// </summary>
public sealed class SafeTensorsRows : IDisposable
{
    readonly FileStream file;
    readonly string path;
    readonly long begin;      // the tensor's first byte in the file
    readonly long rowBytes;

    public string Name { get; }
    public ScalarType DType { get; }
    /// <summary>The tensor's shape, its rows first.</summary>
    public long[] Shape { get; }
    public long Rows => Shape[0];

    /// <summary>Opens tensor <paramref name="name"/> of the file; throws an <see cref="InvalidDataException"/> naming the file when it has no such tensor or the tensor is a scalar.</summary>
    public SafeTensorsRows(string path, string name)
    {
        RegularFile.Require(path, "safetensors file");
        file = File.OpenRead(path);
        try
        {
            var entries = SafeTensors.ReadHeader(file, path, out _, out long dataStart);
            var entry = entries.FirstOrDefault(e => e.Name == name)
                ?? throw SafeTensors.Bad(path, $"no tensor named '{name}' (found: {string.Join(", ", entries.Select(e => e.Name))}).");
            if (entry.Shape.Length == 0) throw SafeTensors.Bad(path, $"'{name}' is a scalar; it has no rows.");
            (this.path, Name, DType, Shape, begin) = (path, name, entry.DType, entry.Shape, dataStart + entry.Begin);
            rowBytes = Shape.Skip(1).Aggregate(1L, (a, b) => a * b) * Kernels.DTypeNames.ElementSize(DType);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Rows [start, start + count) as a CPU tensor (count, Shape[1..]) in the file's dtype; the caller owns it.</summary>
    public Tensor Read(long start, long count)
    {
        SampleTensors.CheckRange(start, count, Rows);
        if (count * rowBytes > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} rows of '{Name}' take {count * rowBytes} bytes, more than one read may (2 GiB); read fewer.");
        var rows = empty([count, .. Shape[1..]], DType);
        try
        {
            file.Position = begin + start * rowBytes;
            file.ReadExactly(rows.bytes);
            return rows;
        }
        catch (Exception e)
        {
            rows.Dispose();
            if (e is EndOfStreamException)   // the file shrank after its length was checked
                throw SafeTensors.Bad(path, $"the file ended early while rows [{start}, {start + count}) of '{Name}' were read.");
            throw;
        }
    }

    public void Dispose() => file.Dispose();
}
