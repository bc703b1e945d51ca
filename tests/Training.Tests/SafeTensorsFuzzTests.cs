using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// Random corruptions of real safetensors files: every read either returns tensors that fit in the file or throws an
/// <see cref="InvalidDataException"/> naming it; no other exception, no allocation beyond a small multiple of the
/// file. The seed is fresh each run and printed on failure; ORCHESTRATOR_FUZZ_SEED=N replays a run.
/// </summary>
public sealed class SafeTensorsFuzzTests(ITestOutputHelper output) : IDisposable
{
    const int Cases = 10000;
    readonly ScratchDirectory scratch = new();
    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Corrupted_files_read_back_valid_tensors_or_throw_InvalidDataException()
    {
        int seed = Environment.GetEnvironmentVariable("ORCHESTRATOR_FUZZ_SEED") is { Length: > 0 } replay ? int.Parse(replay) : Random.Shared.Next();
        var random = new Random(seed);
        var originals = RealFiles();
        string path = scratch.NewFile();
        var failures = new List<string>();
        var outcomes = new SortedDictionary<string, (int Read, int Refused)>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        int run = 0;
        for (; run < Cases && failures.Count < 10; run++)
        {
            var (mutation, bytes) = Mutate(originals[random.Next(originals.Length)], random);
            File.WriteAllBytes(path, bytes);
            string? failure = null;
            bool read = false;
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var tensors = SafeTensors.Read(path);
                long total = tensors.Values.Sum(t => t.numel() * t.element_size());
                foreach (var t in tensors.Values) t.Dispose();
                if (total > bytes.Length) failure = $"read {total} bytes of tensors from a {bytes.Length}-byte file";
                read = true;
            }
            catch (InvalidDataException e) when (e.Message.StartsWith(path, StringComparison.Ordinal) && e.Message.Length > path.Length + 10)
            {
            }
            catch (Exception e)
            {
                failure = $"{e.GetType().Name}: {e.Message}";
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            if (allocated > 64L * bytes.Length + (1 << 20)) failure ??= $"allocated {allocated} bytes reading a {bytes.Length}-byte file";
            if (failure is not null) failures.Add($"case {run} ({mutation}, {bytes.Length} bytes): {failure}");
            var (r, f) = outcomes.GetValueOrDefault(mutation);
            outcomes[mutation] = read ? (r + 1, f) : (r, f + 1);
        }
        string summary = string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value.Read}/{kv.Value.Refused}"));
        output.WriteLine($"seed {seed}: {run} cases in {clock.Elapsed.TotalSeconds:F1} s; read/refused per mutation: {summary}");
        Assert.True(failures.Count == 0, $"seed {seed} (replay with ORCHESTRATOR_FUZZ_SEED={seed}):\n{string.Join("\n", failures)}");
        Assert.All(outcomes, kv => Assert.True(kv.Value.Refused > 0, $"seed {seed}: mutation {kv.Key} was never refused"));
    }

    /// <summary>A real checkpoint shard file and a file of every dtype, including an empty tensor and a scalar.</summary>
    byte[][] RealFiles()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var spec = CheckpointJobs.Small(check, ScalarType.Float32) with { Shape = new ModelShape { Groups = 2, Features = 3, Input = 3, Hidden = 4, Output = 2 } };
        var store = new CheckpointStore(Path.Combine(scratch.Root, "checkpoints"));
        var manifest = CheckpointJobs.SaveAfter(store, spec, steps: 2, shards: 1);
        string shard = Path.Combine(store.Root, spec.Name, CheckpointPaths.StepDirectoryName(2), manifest.Shards[0].File);

        string mixed = scratch.NewFile();
        SafeTensors.Write(mixed, new Dictionary<string, Tensor>
        {
            ["f64"] = check.Randn([3, 2], ScalarType.Float64),
            ["f16"] = check.Randn([5], ScalarType.Float16),
            ["bf16"] = check.Randn([2, 2, 2], ScalarType.BFloat16),
            ["i64"] = randint(-99, 99, [4], dtype: ScalarType.Int64),
            ["i32"] = randint(-99, 99, [3], dtype: ScalarType.Int32),
            ["empty"] = empty([0, 4], ScalarType.Float32),
            ["scalar"] = check.Randn([], ScalarType.Float32),
        }, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "fuzz" });
        return [File.ReadAllBytes(shard), File.ReadAllBytes(mixed)];
    }

    static (string Mutation, byte[] Bytes) Mutate(byte[] original, Random random)
    {
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var bytes = (byte[])original.Clone();
        switch (random.Next(12))
        {
            case 0:
                for (int k = random.Next(1, 4); k > 0; k--) bytes[8 + random.Next(headerLength)] ^= (byte)random.Next(1, 256);
                return ("flip-header", bytes);
            case 1:
                for (int k = random.Next(1, 4); k > 0; k--) bytes[random.Next(bytes.Length)] ^= (byte)random.Next(1, 256);
                return ("flip-any", bytes);
            case 2:
                ulong[] lengths = [0, 1, (ulong)bytes.Length, (ulong)bytes.Length - 8, ulong.MaxValue, long.MaxValue, (ulong)random.NextInt64(),
                                   (ulong)(headerLength + random.Next(-9, 10)), (ulong)random.Next(bytes.Length + 16)];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengths[random.Next(lengths.Length)]);
                return ("length-field", bytes);
            case 3:
                return ("truncate", bytes[..random.Next(bytes.Length)]);
            case 4:
                var tail = new byte[random.Next(1, 65)];
                random.NextBytes(tail);
                return ("append", [.. bytes, .. tail]);
            case 5:
                var garbage = new byte[random.Next(0, 513)];
                random.NextBytes(garbage);
                if (garbage.Length >= 8 && random.Next(2) == 0) BinaryPrimitives.WriteUInt64LittleEndian(garbage, (ulong)random.Next(garbage.Length));
                return ("garbage", garbage);
            case 6:
                return ("invalid-utf8", WithHeader(bytes, InsertAfterQuote(Header(bytes), random, [0xC3, 0x28])));
            case 7:
                return ("duplicate-name", WithHeader(bytes, Encoding.UTF8.GetBytes(DuplicateEntry(Header(bytes), random))));
            default:
                var root = JsonNode.Parse(Header(bytes))!.AsObject();
                string family = EditJson(root, random);
                string json = root.ToJsonString() + new string(' ', random.Next(8));
                return (family, WithHeader(bytes, Encoding.UTF8.GetBytes(json)));
        }
    }

    /// <summary>Edits a random tensor entry (or the metadata) of a parsed header; returns the kind of edit.</summary>
    static string EditJson(JsonObject root, Random random)
    {
        var names = root.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        string name = names[random.Next(names.Count)];
        var entry = root[name]!.AsObject();
        var shape = entry["shape"]!.AsArray();
        var offsets = entry["data_offsets"]!.AsArray();
        switch (random.Next(5))
        {
            case 0:
                string[] dtypes = ["F64", "F32", "F16", "BF16", "I64", "I32", "U8", "BOOL", "F8_E4M3", "f32", ""];
                entry["dtype"] = random.Next(4) == 0 ? Scalar(random) : dtypes[random.Next(dtypes.Length)];
                return "json-dtype";
            case 1:
                switch (random.Next(5))
                {
                    case 0 when shape.Count > 0: shape[random.Next(shape.Count)] = Scalar(random); break;
                    case 1: shape.Add(Scalar(random)); break;
                    case 2 when shape.Count > 0: shape.RemoveAt(random.Next(shape.Count)); break;
                    case 3: entry["shape"] = new JsonArray([.. Enumerable.Range(0, random.Next(60, 80)).Select(_ => (JsonNode?)1)]); break;
                    default: entry["shape"] = new JsonArray(1L << 62, 4); break;
                }
                return "json-shape";
            case 2:
                switch (random.Next(4))
                {
                    case 0: offsets[random.Next(2)] = Scalar(random); break;
                    case 1: entry["data_offsets"] = new JsonArray(offsets[1]!.DeepClone(), offsets[0]!.DeepClone()); break;
                    case 2:
                        long shift = random.Next(-16, 17);
                        entry["data_offsets"] = new JsonArray((long)offsets[0]! + shift, (long)offsets[1]! + shift);
                        break;
                    default: entry["data_offsets"] = new JsonArray(0L, 1L << 40); entry["shape"] = new JsonArray(1L << 38); break;   // huge but consistent
                }
                return "json-offsets";
            case 3:
                switch (random.Next(4))
                {
                    case 0: root.Remove(name); break;
                    case 1: root[name + "_copy"] = entry.DeepClone(); break;
                    case 2: root[name] = Scalar(random); break;
                    default: entry.Remove(random.Next(2) == 0 ? "dtype" : "data_offsets"); break;
                }
                return "json-entry";
            default:
                if (random.Next(2) == 0) root["__metadata__"] = Scalar(random);
                else root["__metadata__"] = new JsonObject { ["format"] = "pt", ["bad"] = Scalar(random) };
                return "json-metadata";
        }
    }

    /// <summary>A JSON value of a kind a header might wrongly hold: negative, huge, fractional, beyond long, or not a number.</summary>
    static JsonNode? Scalar(Random random)
    {
        JsonNode?[] values = [-1, 0, 2, 7, 1L << 31, (1L << 32) + 1, long.MaxValue, JsonValue.Create(ulong.MaxValue), JsonValue.Create(9223372036854775808m),
                              1.5, 1e308, "3", null, true, new JsonArray(), new JsonObject()];
        return values[random.Next(values.Length)];
    }

    static string Header(byte[] file) => Encoding.UTF8.GetString(file, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(file));

    static byte[] WithHeader(byte[] file, byte[] header)
    {
        int oldLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var result = new byte[8 + header.Length + file.Length - 8 - oldLength];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        file.AsSpan(8 + oldLength).CopyTo(result.AsSpan(8 + header.Length));
        return result;
    }

    /// <summary>
    /// The header with a random tensor's entry repeated at its start: JSON parsers keep one of the two silently,
    /// so the text is edited rather than a parsed object.
    /// </summary>
    static string DuplicateEntry(string header, Random random)
    {
        var names = JsonNode.Parse(header)!.AsObject().Select(kv => kv.Key).Where(n => n != "__metadata__").ToList();
        int start = header.IndexOf($"\"{names[random.Next(names.Count)]}\":{{", StringComparison.Ordinal);
        int end = header.IndexOf('}', start) + 1;   // entries hold no nested objects
        return "{" + header[start..end] + "," + header[1..];
    }

    /// <summary>The header with <paramref name="raw"/> bytes inserted after a random quote (inside a name or a string).</summary>
    static byte[] InsertAfterQuote(string header, Random random, byte[] raw)
    {
        var quotes = Enumerable.Range(0, header.Length).Where(i => header[i] == '"').ToList();
        int at = quotes[random.Next(quotes.Count)] + 1;
        return [.. Encoding.UTF8.GetBytes(header[..at]), .. raw, .. Encoding.UTF8.GetBytes(header[at..])];
    }
}
