using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length n, n bytes of JSON
/// {name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__": {string: string}}, then the
/// raw little-endian data, offsets relative to its start. Files are treated as hostile: every length, offset, dtype
/// and shape is checked against the file before anything is allocated, and problems throw
/// <see cref="InvalidDataException"/> naming the file, the tensor and what is wrong. Like the reference reader
/// (the Rust crate behind PyTorch's safetensors), the tensors must tile the data section exactly: no gaps, no
/// overlaps, no trailing bytes, no duplicate names.
/// </summary>
public static class SafeTensors
{
    public const long MaxHeaderBytes = 100_000_000;   // the reference reader's limit
    public const int MaxRank = 64;                     // deeper shapes are not tensors anyone writes
    const string MetadataKey = "__metadata__";

    static readonly Dictionary<string, ScalarType> DTypeByCode = new()
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
    };

    static string CodeOf(ScalarType dtype) => DTypeByCode.FirstOrDefault(kv => kv.Value == dtype).Key
        ?? throw new ArgumentException($"safetensors files here hold F64, F32, F16, BF16, I64 or I32, not {Kernels.DTypeNames.Name(dtype)}.");

    /// <summary>Writes CPU copies of the tensors, names sorted, data 8-byte aligned after the header.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var file = File.Create(path);
        Write(file, tensors, metadata);
    }

    /// <summary>Writes the file to <paramref name="file"/> from its current position; the caller flushes and closes it.</summary>
    public static void Write(Stream file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        var data = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous());
        var writer = new SafeTensorsWriter(file, data.Select(kv => (kv.Key, kv.Value.dtype, kv.Value.shape)).ToArray(), metadata);
        foreach (var (name, t) in data.OrderBy(kv => kv.Key, StringComparer.Ordinal)) writer.WriteRows(name, 0, t);
        writer.Complete();
    }

    /// <summary>
    /// Writes the header of a file holding <paramref name="tensors"/> (names sorted, data laid out in that order) to
    /// <paramref name="file"/> from its current position, padded so the data starts 8-byte aligned; returns each
    /// tensor's data offsets, relative to the data's start, which is where the stream then is.
    /// </summary>
    internal static Dictionary<string, (long Begin, long End)> WriteHeader(Stream file, IEnumerable<(string Name, ScalarType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian; this machine is not.");
        var header = new Dictionary<string, object>();
        if (metadata is not null) header[MetadataKey] = metadata;
        var offsets = new Dictionary<string, (long, long)>();
        long offset = 0;
        foreach (var (name, dtype, shape) in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            long length = shape.Aggregate(1L, (a, b) => a * b) * Kernels.DTypeNames.ElementSize(dtype);
            header[name] = new { dtype = CodeOf(dtype), shape, data_offsets = new[] { offset, offset + length } };
            offsets[name] = (offset, offset + length);
            offset += length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        if (padded > MaxHeaderBytes) throw new ArgumentException($"the header would be {padded} bytes, over the {MaxHeaderBytes} readers accept.");
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)padded);
        file.Write(lengthBytes);
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        return offsets;
    }

    /// <summary>Every tensor in the file, on the CPU; the caller owns them.</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, out _);

    /// <summary>
    /// The tensors <paramref name="include"/> accepts (all when null), on the CPU; the caller owns them. The whole
    /// header is checked either way; only the accepted tensors are allocated and read.
    /// </summary>
    public static Dictionary<string, Tensor> Read(string path, out Dictionary<string, string> metadata, Func<string, bool>? include = null)
    {
        RegularFile.Require(path, "safetensors file");
        using var file = File.OpenRead(path);
        var entries = ReadHeader(file, path, out metadata, out long dataStart).Where(e => include?.Invoke(e.Name) ?? true).ToList();
        // A tensor is read into one span; one larger is read in rows (SafeTensorsRows), never whole.
        if (entries.FirstOrDefault(e => e.End - e.Begin > int.MaxValue) is { } huge)
            throw Bad(path, $"tensor '{huge.Name}': {huge.End - huge.Begin} bytes is more than one tensor here may hold (2 GiB).");
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var entry in entries)
            {
                var t = empty(entry.Shape, entry.DType).DetachFromDisposeScope();
                result[entry.Name] = t;
                file.Position = dataStart + entry.Begin;
                file.ReadExactly(t.bytes);
            }
            return result;
        }
        catch (EndOfStreamException)   // the file shrank after its length was checked
        {
            DisposeAll(result);
            throw Bad(path, "the file ended early while its data was read.");
        }
        catch
        {
            DisposeAll(result);
            throw;
        }
    }

    static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (var t in tensors.Values) t.Dispose();
    }

    /// <summary>One tensor of a file's header: its data is bytes [Begin, End) of the data section.</summary>
    internal sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    /// <summary>The header of <paramref name="file"/>, read from its start and checked against the file; the stream is left where the data starts.</summary>
    internal static List<Entry> ReadHeader(FileStream file, string path, out Dictionary<string, string> metadata, out long dataStart)
    {
        long fileLength = file.Length;
        if (fileLength < 8) throw Bad(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length.");
        Span<byte> lengthBytes = stackalloc byte[8];
        file.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)Math.Min(MaxHeaderBytes, fileLength - 8))
            throw Bad(path, $"the header claims {headerLength} bytes but the file has {fileLength - 8} after the length (limit {MaxHeaderBytes}).");
        var json = new byte[headerLength];
        file.ReadExactly(json);
        dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        // System.Text.Json reads invalid UTF-8 inside strings and only fails later, with another exception type.
        if (!Utf8.IsValid(json)) throw Bad(path, "the header is not valid UTF-8.");
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad(path, $"the header is not valid JSON: {e.Message}"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "the header is not a JSON object.");
            metadata = [];
            var entries = new List<Entry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name)) throw Bad(path, $"the header names '{property.Name}' twice.");
                if (property.Name == MetadataKey)
                {
                    metadata = ReadMetadata(property.Value, path);
                    continue;
                }
                entries.Add(ReadEntry(property.Name, property.Value, dataLength, path));
            }
            CheckTiling(entries, dataLength, path);
            return entries;
        }
    }

    static Dictionary<string, string> ReadMetadata(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad(path, $"'{MetadataKey}' must be an object of strings.");
        var metadata = new Dictionary<string, string>();
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String) throw Bad(path, $"'{MetadataKey}.{item.Name}' must be a string.");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!)) throw Bad(path, $"'{MetadataKey}' names '{item.Name}' twice.");
        }
        return metadata;
    }

    static Entry ReadEntry(string name, JsonElement value, long dataLength, string path)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad(path, $"tensor '{name}': the entry is not an object.");
        if (!value.TryGetProperty("dtype", out var dtypeValue) || dtypeValue.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}': missing string 'dtype'.");
        if (!DTypeByCode.TryGetValue(dtypeValue.GetString()!, out var dtype))
            throw Bad(path, $"tensor '{name}': unsupported dtype '{dtypeValue.GetString()}' (supported: {string.Join(", ", DTypeByCode.Keys)}).");
        if (!value.TryGetProperty("shape", out var shapeValue) || shapeValue.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}': missing array 'shape'.");
        if (shapeValue.GetArrayLength() > MaxRank)
            throw Bad(path, $"tensor '{name}': {shapeValue.GetArrayLength()} dimensions, more than {MaxRank}.");
        var shape = new List<long>();
        foreach (var dim in shapeValue.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw Bad(path, $"tensor '{name}': shape entries must be non-negative integers; got {shapeValue}.");
            shape.Add(size);
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || !offsets[0].TryGetInt64(out long begin)
            || offsets[1].ValueKind != JsonValueKind.Number || !offsets[1].TryGetInt64(out long end))
            throw Bad(path, $"tensor '{name}': 'data_offsets' must be [begin, end] integers.");
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] are outside the {dataLength} data bytes.");
        long expected;
        try
        {
            // libtorch computes strides from the sizes as if no size were 0, so those must not overflow either.
            long span = checked(shape.Aggregate(1L, (a, b) => a * Math.Max(b, 1)) * Kernels.DTypeNames.ElementSize(dtype));
            expected = shape.Contains(0) ? 0 : span;
        }
        catch (OverflowException)
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] overflows.");
        }
        if (expected != end - begin)
            throw Bad(path, $"tensor '{name}': {dtypeValue.GetString()} shape [{string.Join(", ", shape)}] needs {expected} bytes but data_offsets span {end - begin}.");
        return new Entry(name, dtype, [.. shape], begin, end);
    }

    /// <summary>Sorted by offset, each tensor starts where the previous one ended and the last ends with the file.</summary>
    static void CheckTiling(List<Entry> entries, long dataLength, string path)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expectedBegin = 0;
        for (int i = 0; i < sorted.Count; i++)
        {
            if (sorted[i].Begin < expectedBegin)
                throw Bad(path, $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data section.");
            if (sorted[i].Begin > expectedBegin)
                throw Bad(path, $"tensor '{sorted[i].Name}': the data bytes [{expectedBegin}, {sorted[i].Begin}) before it belong to no tensor.");
            expectedBegin = sorted[i].End;
        }
        if (expectedBegin != dataLength)
            throw Bad(path, $"the data section has {dataLength} bytes but the tensors cover {expectedBegin}.");
    }

    internal static InvalidDataException Bad(string path, string problem) => new($"{path}: {problem}");
}
