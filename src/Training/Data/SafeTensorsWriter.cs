using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// A safetensors file (<see cref="SafeTensors"/>) written as its data arrives: the header first, from the tensors'
/// names, dtypes and shapes, then each tensor's rows in order, a run of rows at a time, so a file far larger than
/// memory is written holding one run. Runs of different tensors may alternate: each lands at its place in the data
/// section (the stream seeks there when it is not already). <see cref="Complete"/> checks that every row arrived.
/// </summary>
public sealed class SafeTensorsWriter
{
    sealed class Target(ScalarType dtype, long[] shape, long begin)
    {
        public ScalarType DType { get; } = dtype;
        public long[] Shape { get; } = shape;
        public long Begin { get; } = begin;
        public long RowsWritten { get; set; }
        public long RowBytes => Shape.Skip(1).Aggregate(1L, (a, b) => a * b) * Kernels.DTypeNames.ElementSize(DType);
    }

    readonly Stream file;
    readonly Dictionary<string, Target> targets = [];
    long position;   // where the stream is, relative to the data's start: tracked so a sequential writer never asks a stream to seek

    /// <summary>Writes the header to <paramref name="file"/> at its current position; the caller flushes and closes the stream.</summary>
    public SafeTensorsWriter(Stream file, IReadOnlyList<(string Name, ScalarType DType, long[] Shape)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        this.file = file;
        var offsets = SafeTensors.WriteHeader(file, tensors, metadata);
        foreach (var (name, dtype, shape) in tensors)
            targets[name] = new Target(dtype, shape.Length == 0 ? [1] : shape, offsets[name].Begin);   // a scalar is one row of one value
    }

    /// <summary>
    /// Rows [<paramref name="start"/>, start + rows.shape[0]) of tensor <paramref name="name"/>, which must follow the
    /// rows written before and match its dtype and row shape (a scalar tensor: the tensor itself).
    /// </summary>
    public void WriteRows(string name, long start, Tensor rows)
    {
        var target = targets.TryGetValue(name, out var t) ? t : throw new ArgumentException($"the file has no tensor named '{name}'.", nameof(name));
        var rowShape = rows.dim() == 0 ? [] : rows.shape[1..];
        long count = rows.dim() == 0 ? 1 : rows.shape[0];
        if (rows.dtype != target.DType || !rowShape.SequenceEqual(target.Shape.Skip(1)) || start != target.RowsWritten || start + count > target.Shape[0])
            throw new ArgumentException($"tensor '{name}' ({string.Join(", ", target.Shape)}) {target.DType}: rows [{start}, {start + count}) of " +
                                        $"({string.Join(", ", rows.shape)}) {rows.dtype} do not follow the {target.RowsWritten} rows written.", nameof(rows));
        using var data = rows.detach().cpu().contiguous();
        long at = target.Begin + start * target.RowBytes;
        if (at != position) file.Seek(at - position, SeekOrigin.Current);
        file.Write(data.bytes);
        position = at + count * target.RowBytes;
        target.RowsWritten += count;
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> naming the first tensor that did not get all its rows.</summary>
    public void Complete()
    {
        if (targets.FirstOrDefault(kv => kv.Value.Shape.Length > 0 && kv.Value.RowsWritten != kv.Value.Shape[0]) is (var name, { } missing))
            throw new InvalidOperationException($"tensor '{name}' got {missing.RowsWritten} of its {missing.Shape[0]} rows.");
    }
}
