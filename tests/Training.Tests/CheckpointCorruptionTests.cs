using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// Damaged checkpoints give an <see cref="InvalidDataException"/> that names the file and the problem, and reading
/// or writing around them deletes nothing that was saved.
/// </summary>
public sealed class CheckpointCorruptionTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    readonly CheckpointStore store;
    readonly JobSpec spec;
    readonly string stepDirectory;

    public CheckpointCorruptionTests()
    {
        store = new CheckpointStore(scratch.Root);
        spec = CheckpointJobs.Small(check);
        CheckpointJobs.SaveAfter(store, spec, steps: 3, shards: 3);   // shards [0,2) [2,4) [4,5)
        stepDirectory = Path.Combine(store.Root, spec.Name, "step-000000003");
    }

    public void Dispose() => scratch.Dispose();

    string FileOf(string name) => Path.Combine(stepDirectory, name);

    /// <summary>Every file under the job with its length: what "nothing was deleted" compares.</summary>
    Dictionary<string, long> Snapshot() => Directory.GetFiles(Path.Combine(store.Root, spec.Name), "*", SearchOption.AllDirectories)
        .ToDictionary(f => f, f => new FileInfo(f).Length);

    /// <summary>Restoring the whole job fails with a message holding every fragment; no file goes missing.</summary>
    void AssertRestoreFails(params string[] fragments)
    {
        var before = Snapshot();
        var e = Assert.Throws<InvalidDataException>(() => InProcessTrainer.Resume(store, spec.Name).Dispose());
        foreach (var fragment in fragments) Assert.Contains(fragment, e.Message);
        Assert.Equal(before, Snapshot());
        CheckpointJobs.SaveAfter(store, spec, steps: 4, shards: 1);   // the next save cleans leftovers, never a damaged step
        Assert.True(before.Keys.All(File.Exists));
    }

    static void Edit(string path, Action<byte[]> edit)
    {
        var bytes = File.ReadAllBytes(path);
        edit(bytes);
        File.WriteAllBytes(path, bytes);
    }

    void EditManifest(Action<JsonNode> edit)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(FileOf("manifest.json")))!;
        edit(manifest);
        File.WriteAllText(FileOf("manifest.json"), manifest.ToJsonString());
    }

    [Fact]
    public void A_flipped_data_byte_is_a_checksum_mismatch()
    {
        Edit(FileOf("shard-2-4.safetensors"), bytes => bytes[^5] ^= 0x10);
        AssertRestoreFails("shard-2-4.safetensors", "checksum mismatch");
    }

    [Fact]
    public void Only_the_files_a_range_needs_are_read()
    {
        Edit(FileOf("shard-2-4.safetensors"), bytes => bytes[^5] ^= 0x10);
        using var scope = NewDisposeScope();
        var checkpoint = store.Open(spec.Name);
        using var unaffected = checkpoint.CreateTowers(new GroupRange(4, 1), CPU);
        Assert.Contains("checksum mismatch", Assert.Throws<InvalidDataException>(() => checkpoint.CreateTowers(new GroupRange(1, 2), CPU)).Message);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        File.Delete(FileOf("trunk.safetensors"));
        AssertRestoreFails("trunk.safetensors", "missing");
    }

    [Fact]
    public void A_truncated_file_is_caught_by_its_length()
    {
        File.WriteAllBytes(FileOf("shard-0-2.safetensors"), File.ReadAllBytes(FileOf("shard-0-2.safetensors"))[..100]);
        AssertRestoreFails("shard-0-2.safetensors", "100 bytes, but the manifest says");
    }

    [Fact]
    public void A_file_from_another_checkpoint_is_caught_by_its_metadata_even_with_a_matching_checksum()
    {
        CheckpointJobs.SaveAfter(store, spec, steps: 5, shards: 3);
        var other = Path.Combine(store.Root, spec.Name, "step-000000005", "shard-4-5.safetensors");
        File.Copy(other, FileOf("shard-4-5.safetensors"), overwrite: true);
        var digest = CheckpointFile.Of(other);
        EditManifest(m =>
        {
            m["shards"]![2]!["sha256"] = digest.Sha256;
            m["shards"]![2]!["bytes"] = digest.Bytes;
        });
        var e = Assert.Throws<InvalidDataException>(() => store.Open(spec.Name, step: 3).Verify());
        Assert.Contains("metadata 'step' is '5'", e.Message);
    }

    /// <summary>An edit of manifest.json and the problem it must be refused with (in it or in the file it misdescribes).</summary>
    public static TheoryData<string, string> ManifestEdits => new()
    {
        { "step", "manifest.json: the manifest is for job 'ckpt-job' step 4, not 'ckpt-job' step 3" },
        { "gap", "manifest.json: 'shard-2-4.safetensors' holds groups [3, 5), but the shards must cover [0, 5) in order" },
        { "escape", "manifest.json: '../trunk.safetensors' is not a plain file name" },
        { "version", $"manifest.json: format version {CheckpointManifest.CurrentFormat + 1}; this reader knows versions 1 to {CheckpointManifest.CurrentFormat}" },
        { "dtype", "manifest.json: dtype 'float32' is not the job's dtype" },
        { "job-dtype", "trunk.safetensors: tensor 'trunk.weight' is Float64 (7, 15) but the job needs Float32 (7, 15)" },
        { "shape", "shard-0-2.safetensors: tensor 'groups.0.gate_up.weight' is Float64 (3, 12) but the job needs Float64 (3, 14)" },
        { "json", "manifest.json: not a valid manifest" },
        { "unknown-field", "manifest.json: not a valid manifest" },
        { "null-job", "manifest.json: not a valid manifest" },
        { "duplicate-field", "manifest.json: not a valid manifest" },
        { "checksum", "trunk.safetensors: checksum mismatch" },
        { "null-shard", "manifest.json: 'shards' and 'job.devices' may not hold null" },
        { "null-device", "manifest.json: 'shards' and 'job.devices' may not hold null" },
    };

    [Theory, MemberData(nameof(ManifestEdits))]
    public void A_tampered_manifest_is_refused_naming_the_problem(string edit, string problem)
    {
        switch (edit)
        {
            case "step": EditManifest(m => m["step"] = 4); break;
            case "gap": EditManifest(m => m["shards"]![1]!["firstGroup"] = 3); break;
            case "escape": EditManifest(m => m["trunk"]!["file"] = "../trunk.safetensors"); break;
            case "version": EditManifest(m => m["formatVersion"] = CheckpointManifest.CurrentFormat + 1); break;
            case "dtype": EditManifest(m => m["dType"] = "float32"); break;
            case "job-dtype": EditManifest(m => { m["dType"] = "float32"; m["job"]!["dType"] = "float32"; }); break;
            case "shape": EditManifest(m => m["job"]!["shape"]!["hidden"] = 7); break;
            case "json": File.WriteAllText(FileOf("manifest.json"), "{\"step\": 3,"); break;
            case "unknown-field": EditManifest(m => m["extra"] = 1); break;
            case "null-job": EditManifest(m => m["job"] = null); break;
            case "duplicate-field":
                File.WriteAllText(FileOf("manifest.json"), File.ReadAllText(FileOf("manifest.json")).Replace("\"optimizerStep\"", "\"step\": 3, \"optimizerStep\""));
                break;
            case "checksum": EditManifest(m => m["trunk"]!["sha256"] = new string('0', 64)); break;
            case "null-shard": EditManifest(m => m["shards"]![1] = null); break;
            case "null-device": EditManifest(m => m["job"]!["devices"] = new JsonArray("cpu", null)); break;
        }
        AssertRestoreFails(problem);
    }

    [Fact]
    public void A_damaged_latest_pointer_is_an_error_not_a_fresh_start()
    {
        File.WriteAllText(Path.Combine(store.Root, spec.Name, "latest"), "step-000000099\n");
        Assert.Contains("does not exist", Assert.Throws<InvalidDataException>(() => store.LatestStep(spec.Name)).Message);
        File.WriteAllText(Path.Combine(store.Root, spec.Name, "latest"), "../../etc\n");
        Assert.Contains("not a step directory name", Assert.Throws<InvalidDataException>(() => store.Open(spec.Name)).Message);
        Assert.True(Directory.Exists(stepDirectory));
        CheckpointJobs.SaveAfter(store, spec, steps: 4, shards: 1);   // the next checkpoint repairs the pointer
        Assert.Equal(4, store.LatestStep(spec.Name));
        File.Delete(Path.Combine(store.Root, spec.Name, "latest"));   // as after a crash between the rename and the pointer
        Assert.Equal(4, store.LatestStep(spec.Name));
        Assert.Equal([3, 4], store.List(spec.Name));
    }

    /// <summary>Random edits of a real manifest: each parses to a valid manifest or is an <see cref="InvalidDataException"/>.</summary>
    [Fact]
    public void Random_edits_of_a_manifest_parse_or_are_refused()
    {
        int seed = Random.Shared.Next();
        var random = new Random(seed);
        var original = File.ReadAllBytes(FileOf("manifest.json"));
        string[] values = ["-1", "0", "1e400", "9223372036854775808", "null", "\"\"", "[]", "{}", "\"x\"", "true", "1.5"];
        for (int i = 0; i < 3000; i++)
        {
            byte[] bytes;
            switch (random.Next(3))
            {
                case 0:
                    bytes = (byte[])original.Clone();
                    for (int k = random.Next(1, 4); k > 0; k--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                case 1:
                    bytes = original[..random.Next(original.Length)];
                    break;
                default:   // a random value replaced by one of the wrong kind
                    string text = System.Text.Encoding.UTF8.GetString(original);
                    int colon = text.IndexOf(':', random.Next(text.Length - 1));
                    int end = colon < 0 ? -1 : text.IndexOfAny([',', '\n', '}'], colon + 2);
                    bytes = System.Text.Encoding.UTF8.GetBytes(colon < 0 || end < 0 ? text : text[..(colon + 1)] + values[random.Next(values.Length)] + text[end..]);
                    break;
            }
            try
            {
                CheckpointManifest.Parse(bytes, "manifest.json");
            }
            catch (InvalidDataException e) when (e.Message.StartsWith("manifest.json: ", StringComparison.Ordinal))
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed}, case {i}: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>Random byte edits of any file of the checkpoint: each restore either succeeds exactly or is refused.</summary>
    [Fact]
    public void Random_damage_to_any_file_never_restores_wrong_values()
    {
        int seed = Random.Shared.Next();
        var random = new Random(seed);
        using var scope = NewDisposeScope();
        using var expected = store.Open(spec.Name).CreateTowers(new GroupRange(0, spec.Shape.Groups), CPU);
        var files = Directory.GetFiles(stepDirectory);
        var originals = files.ToDictionary(f => f, File.ReadAllBytes);
        int refused = 0;
        for (int i = 0; i < 300; i++)
        {
            string file = files[random.Next(files.Length)];
            var bytes = (byte[])originals[file].Clone();
            int edits = random.Next(1, 4);
            for (int k = 0; k < edits; k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            File.WriteAllBytes(file, bytes);
            try
            {
                var checkpoint = store.Open(spec.Name);
                using var restored = checkpoint.CreateTowers(new GroupRange(0, spec.Shape.Groups), CPU);
                checkpoint.ReadTrunk().Dispose();
                CheckpointJobs.AssertSameTowers(expected, restored);   // an edit that changed nothing that matters (JSON whitespace, a date digit)
            }
            catch (InvalidDataException e)
            {
                Assert.True(e.Message.Contains(stepDirectory, StringComparison.Ordinal), $"seed {seed}, case {i}: '{e.Message}' names no file");
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed}, case {i} ({Path.GetFileName(file)}): {e.GetType().Name}: {e.Message}");
            }
            File.WriteAllBytes(file, originals[file]);
        }
        Assert.True(refused > 250, $"seed {seed}: only {refused} of 300 damaged checkpoints were refused");
    }
}
