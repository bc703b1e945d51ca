using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>The store's files and format, atomic publication, and what happens to crashed writes and bad names.</summary>
public sealed class CheckpointStoreTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    readonly CheckpointStore store;
    readonly JobSpec spec;

    public CheckpointStoreTests()
    {
        store = new CheckpointStore(Path.Combine(scratch.Root, "checkpoints"));
        spec = CheckpointJobs.Small(check);
    }

    public void Dispose() => scratch.Dispose();

    string JobDirectory => Path.Combine(store.Root, spec.Name);

    CheckpointManifest SaveAfter(int steps) => CheckpointJobs.SaveAfter(store, spec, steps, shards: 2);

    [Fact]
    public void A_checkpoint_is_a_step_directory_of_safetensors_files_a_manifest_and_a_latest_pointer()
    {
        var manifest = SaveAfter(steps: 3);
        string step = Path.Combine(JobDirectory, "step-000000003");
        Assert.Equal(["manifest.json", "shard-0-3.safetensors", "shard-3-5.safetensors", "trunk.safetensors"],
            Directory.GetFiles(step).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("step-000000003\n", File.ReadAllText(Path.Combine(JobDirectory, "latest")));
        Assert.Equal(3, store.LatestStep(spec.Name));

        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(step, "manifest.json"))).RootElement;
        Assert.Equal(CheckpointManifest.CurrentFormat, json.GetProperty("formatVersion").GetInt32());
        Assert.Equal(3, json.GetProperty("step").GetInt64());
        Assert.Equal(spec.Seed, json.GetProperty("job").GetProperty("seed").GetInt64());
        var shard = json.GetProperty("shards")[1];
        Assert.Equal(("shard-3-5.safetensors", 3, 2), (shard.GetProperty("file").GetString(), shard.GetProperty("firstGroup").GetInt32(), shard.GetProperty("groupCount").GetInt32()));
        Assert.Equal(CheckpointFile.Of(Path.Combine(step, "shard-3-5.safetensors")).Sha256, shard.GetProperty("sha256").GetString());
        Assert.Equal(manifest.ToJson(), store.Open(spec.Name).Manifest.ToJson());

        using var scope = NewDisposeScope();
        var tensors = SafeTensors.Read(Path.Combine(step, "shard-3-5.safetensors"), out var metadata);
        Assert.Equal(new long[] { 3, 12 }, tensors["groups.4.gate_up.weight"].shape);   // (D_in, 2H)
        Assert.Equal(new long[] { 6, 2 }, tensors["groups.3.down.exp_avg_sq"].shape);   // (H, D_out)
        Assert.Equal(12, tensors.Count);                                                  // 2 groups x 2 matrices x 3 slots
        Assert.Equal(("pt", "3", "3-5"), (metadata["format"], metadata["step"], metadata["groups"]));
    }

    /// <summary>What PyTorch's reader insists on: see https://github.com/huggingface/safetensors (format section).</summary>
    [Fact]
    public void Files_follow_the_safetensors_format_exactly()
    {
        SaveAfter(steps: 2);
        foreach (var path in Directory.GetFiles(Path.Combine(JobDirectory, "step-000000002"), "*.safetensors"))
        {
            var bytes = File.ReadAllBytes(path);
            long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            Assert.Equal(0, (8 + headerLength) % 8);                                           // data 8-byte aligned
            string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
            Assert.StartsWith("{", header);
            Assert.Equal(header.TrimEnd(' ').Length, header.TrimEnd().Length);                 // padded with spaces only
            var root = JsonDocument.Parse(header).RootElement;
            Assert.All(root.GetProperty("__metadata__").EnumerateObject(), m => Assert.Equal(JsonValueKind.String, m.Value.ValueKind));
            var spans = root.EnumerateObject().Where(p => p.Name != "__metadata__").Select(p =>
            {
                var offsets = p.Value.GetProperty("data_offsets");
                long elements = p.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
                Assert.Equal("F64", p.Value.GetProperty("dtype").GetString());
                Assert.Equal(elements * 8, offsets[1].GetInt64() - offsets[0].GetInt64());
                return (Begin: offsets[0].GetInt64(), End: offsets[1].GetInt64());
            }).OrderBy(s => s.Begin).ToList();
            long expectedBegin = 0;                                                             // relative to the data start,
            foreach (var (begin, end) in spans) { Assert.Equal(expectedBegin, begin); expectedBegin = end; }   // no gaps or overlaps
            Assert.Equal(bytes.Length - 8 - headerLength, expectedBegin);                      // and nothing after the last
        }
    }

    [Fact]
    public void A_crash_before_the_rename_leaves_the_previous_checkpoint_latest_and_its_leftovers_are_cleaned_next_time()
    {
        SaveAfter(steps: 2);
        string leftover;
        using (var scope = NewDisposeScope())
        using (var trainer = CheckpointJobs.Trained(spec, steps: 5))
        using (var trunk = ShardState.Export(trainer.Trunk))
        using (var towers = ShardState.Export(trainer.Towers))
        {
            // Another process (an earlier life of this one) dies mid-write: its pending checkpoint is never committed or disposed.
            var pending = new CheckpointStore(store.Root).Begin(spec, 5, trunk.OptimizerStep);
            leftover = pending.Directory;
            pending.WriteTrunk(trunk);
            pending.WriteTowers(towers);
            Assert.StartsWith(JobDirectory, leftover);
        }
        Assert.True(Directory.Exists(leftover));
        Assert.Equal([2], store.List(spec.Name));
        Assert.Equal(2, store.LatestStep(spec.Name));
        store.Open(spec.Name).Verify();

        SaveAfter(steps: 6);
        Assert.False(Directory.Exists(leftover), "the next write removes what the crashed one left");
        Assert.Equal([2, 6], store.List(spec.Name));
        Assert.Equal(6, store.LatestStep(spec.Name));
    }

    [Fact]
    public void An_abandoned_checkpoint_removes_its_directory_and_publishes_nothing()
    {
        SaveAfter(steps: 1);
        using (var scope = NewDisposeScope())
        using (var trainer = CheckpointJobs.Trained(spec, steps: 1))
        using (var trunk = ShardState.Export(trainer.Trunk))
        using (var pending = store.Begin(spec, 4, trunk.OptimizerStep))
        {
            var trunkFile = pending.WriteTrunk(trunk);
            Assert.Contains("shards cover", Assert.Throws<ArgumentException>(() => pending.Commit(trunkFile, [])).Message);   // no towers
        }
        Assert.Equal(["latest", "step-000000001"], Directory.GetFileSystemEntries(JobDirectory).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void States_that_do_not_fit_the_job_are_refused_before_anything_is_written()
    {
        using var scope = NewDisposeScope();
        using var trainer = CheckpointJobs.Trained(spec, steps: 2);
        using var trunk = ShardState.Export(trainer.Trunk);
        using var pending = store.Begin(spec, 2, optimizerStep: 2);
        using var wrongDType = new ShardState(null, 2, trunk.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32)));
        Assert.Contains("trunk.weight", Assert.Throws<ArgumentException>(() => pending.WriteTrunk(wrongDType)).Message);
        using var behind = new ShardState(null, 1, trunk.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone()));
        Assert.Contains("optimizer step 1", Assert.Throws<ArgumentException>(() => pending.WriteTrunk(behind)).Message);
        Assert.Empty(Directory.GetFiles(pending.Directory));
        SaveAfter(steps: 3);
        Assert.Throws<IOException>(() => SaveAfter(steps: 3));   // a published step is never overwritten
    }

    public static TheoryData<string> EscapingNames => ["../evil", "..", ".", ".hidden", "a/b", "a\\b", "/abs", "a..b", "", "line\n", new string('x', 65), "spa ce"];

    [Theory, MemberData(nameof(EscapingNames))]
    public void Job_names_that_could_leave_the_root_are_refused(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => store.LatestStep(name));
        Assert.Contains("job name", e.Message);
        Assert.Throws<ArgumentException>(() => store.Open(name));
        Assert.Throws<ArgumentException>(() => store.List(name));
        Assert.Empty(Directory.GetFileSystemEntries(store.Root));
    }

    [Fact]
    public void A_job_directory_that_is_a_link_out_of_the_root_is_refused()
    {
        string outside = Directory.CreateDirectory(Path.Combine(scratch.Root, "outside")).FullName;
        Directory.CreateSymbolicLink(Path.Combine(store.Root, spec.Name), outside);
        Assert.Contains("is a link", Assert.Throws<ArgumentException>(() => SaveAfter(steps: 1)).Message);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        Assert.Throws<ArgumentException>(() => CheckpointPaths.Inside(store.Root, "..", "outside"));
    }
}
