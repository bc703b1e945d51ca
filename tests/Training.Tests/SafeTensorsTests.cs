using System.Buffers.Binary;
using System.Text;
using Orchestrator.Training.Data;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

public sealed class SafeTensorsTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Rows_are_read_from_the_file_at_their_offset_and_written_a_run_at_a_time()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var (a, b) = (check.Randn([13, 3, 2], ScalarType.Float32), check.Randn([13, 4], ScalarType.Float64));
        var path = scratch.NewFile();
        // Runs of the two tensors alternate, as predict writes predictions and probabilities; the file equals one written whole.
        using (var file = File.Create(path))
        {
            var writer = new SafeTensorsWriter(file, [("b", ScalarType.Float64, [13L, 4]), ("a", ScalarType.Float32, [13L, 3, 2])]);
            foreach (long start in new long[] { 0, 5, 10 })
            {
                long count = Math.Min(5, 13 - start);
                writer.WriteRows("a", start, a.narrow(0, start, count));
                writer.WriteRows("b", start, b.narrow(0, start, count));
            }
            writer.Complete();
        }
        var whole = scratch.NewFile();
        SafeTensors.Write(whole, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b });
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(path));

        using var rows = new SafeTensorsRows(path, "a");
        Assert.Equal([13L, 3, 2], rows.Shape);
        Assert.True(Same(rows.Read(4, 6), a.narrow(0, 4, 6)), "rows [4, 10) of 'a'");
        Assert.True(Same(rows.Read(12, 1), a.narrow(0, 12, 1)), "the last row of 'a'");
        Assert.Throws<ArgumentOutOfRangeException>(() => rows.Read(10, 4));
        Assert.Contains("no tensor named 'c' (found: a, b)", Assert.Throws<InvalidDataException>(() => new SafeTensorsRows(path, "c")).Message);
    }

    [Fact]
    public void Every_dtype_round_trips_bit_for_bit_including_views_and_empty_tensors()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f64"] = check.Randn([3, 4], ScalarType.Float64),
            ["f32"] = check.Randn([2, 3, 5], ScalarType.Float32),
            ["f16"] = check.Randn([7], ScalarType.Float16),
            ["bf16"] = check.Randn([4, 2], ScalarType.BFloat16),
            ["i64"] = randint(-1000, 1000, [6], dtype: ScalarType.Int64),
            ["i32"] = randint(-1000, 1000, [2, 2], dtype: ScalarType.Int32),
            ["view"] = check.Randn([4, 6], ScalarType.Float32).t(),       // non-contiguous
            ["empty"] = empty([0, 3], ScalarType.Float32),
            ["scalar"] = check.Randn([], ScalarType.Float64),
        };
        var path = scratch.NewFile();
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var back = SafeTensors.Read(path, out var metadata);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(tensors.Keys.Order(), back.Keys.Order());
        foreach (var (name, t) in tensors)
        {
            using var read = back[name];
            Assert.Equal(t.dtype, read.dtype);
            Assert.Equal(t.shape, read.shape);
            Assert.True(Same(t, read), name);
        }
    }

    [Fact]
    public void A_filtered_read_returns_only_the_accepted_tensors_but_checks_the_whole_header()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var path = scratch.NewFile();
        var a = check.Randn([2, 3], ScalarType.Float32);
        SafeTensors.Write(path, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = check.Randn([4], ScalarType.Float64) });
        var read = SafeTensors.Read(path, out _, name => name == "a");
        Assert.Equal(["a"], read.Keys);
        Assert.True(Same(a, read["a"]));
        var bad = Raw("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[9],"data_offsets":[4,8]}}""", 8);
        Assert.Contains("tensor 'b'", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(bad, out _, name => name == "a")).Message);
    }

    /// <summary>A file with the given header JSON and data bytes.</summary>
    string Raw(string header, int dataBytes, ulong? claimedHeaderLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedHeaderLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        Random.Shared.NextBytes(bytes.AsSpan(8 + json.Length));
        var path = scratch.NewFile();
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static TheoryData<string, int, string> Hostile => new()
    {
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "outside the 4 data bytes" },
        { """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes" },
        { """{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}""", 8, "unsupported dtype 'U8'" },
        { """{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "non-negative integers" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "tensor 'a': data_offsets [8, 0]" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap" },
        { """{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", 8, "overflows" },
        { """{"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}}""", 0, "overflows" },   // empty, yet strides overflow
        { """{"a":{"dtype":"F32","shape":[2]}}""", 8, "tensor 'a': 'data_offsets'" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", 8, "not valid JSON" },
        { """[1, 2]""", 0, "not a JSON object" },
        { """{"__metadata__":{"k":3}}""", 0, "must be a string" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "the data bytes [0, 4) before it belong to no tensor" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8, "the data section has 8 bytes but the tensors cover 4" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "names 'a' twice" },
        { """{"a":{"dtype":"F32","shape":[1],"data_offsets":["0",4]}}""", 4, "'data_offsets' must be [begin, end] integers" },
        { $$$"""{"a":{"dtype":"F32","shape":[{{{string.Join(",", Enumerable.Repeat(1, 65))}}}],"data_offsets":[0,4]}}""", 4, "65 dimensions" },
    };

    [Theory, MemberData(nameof(Hostile))]
    public void Hostile_files_are_rejected_naming_the_problem(string header, int dataBytes, string problem)
    {
        var path = Raw(header, dataBytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(problem, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_header_length_beyond_the_file_is_rejected_without_allocating_it()
    {
        var path = Raw("{}", 0, claimedHeaderLength: ulong.MaxValue / 2);
        Assert.Contains("the header claims", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("fewer than the 8-byte", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);
    }
}
