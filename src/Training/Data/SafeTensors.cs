using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length n, n bytes of JSON
/// {name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__": {string: string}}, then the
/// raw little-endian data, offsets relative to its start. Files are treated as hostile: every length, offset, dtype
/// and shape is checked against the file before anything is allocated, and problems throw
/// <see cref="InvalidDataException"/> naming the file, the tensor and what is wrong.
/// </summary>
public static class SafeTensors
{
    public const long MaxHeaderBytes = 100L << 20;
    const string MetadataKey = "__metadata__";

    static readonly Dictionary<string, ScalarType> DTypeByCode = new()
    {
        ["F64"] = ScalarType.Float64, ["F32"] = ScalarType.Float32, ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
    };

    static string CodeOf(ScalarType dtype) => DTypeByCode.FirstOrDefault(kv => kv.Value == dtype).Key
        ?? throw new ArgumentException($"safetensors files here hold F64, F32, F16, BF16, I64 or I32, not {dtype}.");

    /// <summary>Writes CPU copies of the tensors, names sorted, data 8-byte aligned after the header.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        var header = new Dictionary<string, object>();
        if (metadata is not null) header[MetadataKey] = metadata;
        var blobs = new List<Tensor>();
        long offset = 0;
        foreach (var (name, t) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var data = t.detach().cpu().contiguous();
            long length = data.numel() * DTypes.ElementSize(data.dtype);
            header[name] = new { dtype = CodeOf(data.dtype), shape = data.shape, data_offsets = new[] { offset, offset + length } };
            blobs.Add(data);
            offset += length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)padded);
        file.Write(lengthBytes);
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        foreach (var data in blobs) file.Write(data.bytes);
    }

    /// <summary>Every tensor in the file, on the CPU; the caller owns them.</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, out _);

    public static Dictionary<string, Tensor> Read(string path, out Dictionary<string, string> metadata)
    {
        using var file = File.OpenRead(path);
        var entries = ReadHeader(file, path, out metadata, out long dataStart);
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
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    static List<Entry> ReadHeader(FileStream file, string path, out Dictionary<string, string> metadata, out long dataStart)
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

        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad(path, $"the header is not valid JSON: {e.Message}"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "the header is not a JSON object.");
            metadata = [];
            var entries = new List<Entry>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    metadata = ReadMetadata(property.Value, path);
                    continue;
                }
                entries.Add(ReadEntry(property.Name, property.Value, dataLength, path));
            }
            CheckNoOverlap(entries, path);
            return entries;
        }
    }

    static Dictionary<string, string> ReadMetadata(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad(path, $"'{MetadataKey}' must be an object of strings.");
        var metadata = new Dictionary<string, string>();
        foreach (var item in value.EnumerateObject())
            metadata[item.Name] = item.Value.ValueKind == JsonValueKind.String ? item.Value.GetString()!
                : throw Bad(path, $"'{MetadataKey}.{item.Name}' must be a string.");
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
        var shape = new List<long>();
        foreach (var dim in shapeValue.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw Bad(path, $"tensor '{name}': shape entries must be non-negative integers; got {shapeValue}.");
            shape.Add(size);
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw Bad(path, $"tensor '{name}': 'data_offsets' must be [begin, end] integers.");
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] are outside the {dataLength} data bytes.");
        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => a * b) * DTypes.ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] overflows.");
        }
        if (expected != end - begin)
            throw Bad(path, $"tensor '{name}': {dtypeValue.GetString()} shape [{string.Join(", ", shape)}] needs {expected} bytes but data_offsets span {end - begin}.");
        if (expected > int.MaxValue)
            throw Bad(path, $"tensor '{name}': {expected} bytes is more than one tensor here may hold (2 GiB).");
        return new Entry(name, dtype, [.. shape], begin, end);
    }

    static void CheckNoOverlap(List<Entry> entries, string path)
    {
        var sorted = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw Bad(path, $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data section.");
    }

    static InvalidDataException Bad(string path, string problem) => new($"{path}: {problem}");
}
