using System.Text.Json.Nodes;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// manifest.json lists each shard's file, length, checksum and group range once (format 2), and manifests of format 1,
/// which repeated them as "groups" and "content", still open and verify.
/// </summary>
public sealed class CheckpointManifestFormatTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    static JsonObject ManifestJson(string stepDirectory) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(stepDirectory, CheckpointManifest.FileName)))!.AsObject();

    [Fact]
    public void A_new_manifest_lists_each_shard_field_once()
    {
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        CheckpointJobs.SaveAfter(store, spec, steps: 2, shards: 3);   // shards [0,2) [2,4) [4,5)
        var step = Path.Combine(store.Root, spec.Name, "step-000000002");

        var json = ManifestJson(step);
        Assert.Equal(2, CheckpointManifest.CurrentFormat);
        Assert.Equal(CheckpointManifest.CurrentFormat, (int)json["formatVersion"]!);
        var shards = json["shards"]!.AsArray().Select(s => s!.AsObject()).ToList();
        Assert.Equal([0, 2, 4], shards.Select(s => (int)s["firstGroup"]!));
        Assert.All(shards, shard => Assert.Equal(["file", "firstGroup", "groupCount", "bytes", "sha256"], shard.Select(p => p.Key)));

        var checkpoint = store.Open(spec.Name);
        checkpoint.Verify();
        foreach (var shard in checkpoint.Manifest.Shards)
            Assert.Equal(CheckpointFile.Of(Path.Combine(step, shard.File)), shard.Content);
    }

    [Fact]
    public void A_format_1_manifest_with_its_repeated_shard_fields_opens_and_verifies()
    {
        const string job = "legacy-bf16";   // checked in as the trainer wrote it, manifest format 1
        CheckpointJobs.CopyFixture(job, scratch.Root);
        var store = new CheckpointStore(scratch.Root);
        var step = Path.Combine(scratch.Root, job, "step-000000006");
        var written = ManifestJson(step);
        Assert.Equal(1, (int)written["formatVersion"]!);
        var listed = written["shards"]![0]!.AsObject();
        Assert.Equal(["file", "firstGroup", "groupCount", "bytes", "sha256", "groups", "content"], listed.Select(p => p.Key));

        var checkpoint = store.Open(job);
        checkpoint.Verify();
        Assert.Equal(1, checkpoint.Manifest.FormatVersion);
        var shard = Assert.Single(checkpoint.Manifest.Shards);
        Assert.Equal(new GroupRange((int)listed["groups"]!["first"]!, (int)listed["groups"]!["count"]!), shard.Groups);
        Assert.Equal(new CheckpointFile((string)listed["content"]!["file"]!, (long)listed["content"]!["bytes"]!, (string)listed["content"]!["sha256"]!),
            shard.Content);
        Assert.Equal(CheckpointFile.Of(Path.Combine(step, shard.File)), shard.Content);
    }

    /// <summary>The format-1 fixture job copied to the scratch directory, its manifest changed by <paramref name="edit"/>; its name.</summary>
    string FixtureWithManifest(Action<JsonObject> edit)
    {
        const string job = "legacy-bf16";
        CheckpointJobs.CopyFixture(job, scratch.Root);
        var path = Path.Combine(scratch.Root, job, "step-000000006", CheckpointManifest.FileName);
        var manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
        return job;
    }

    [Fact]
    public void A_manifest_that_names_its_dtype_by_an_alias_opens_and_is_written_back_with_the_canonical_name()
    {
        // Before dtypes were typed, a job's dtype reached its manifest as the user spelled it ("bf16").
        var checkpoint = new CheckpointStore(scratch.Root).Open(FixtureWithManifest(written =>
        {
            Assert.Equal("bfloat16", (string)written["dType"]!);
            written["dType"] = "bf16";
            written["job"]!["dType"] = "BF16";
        }));
        checkpoint.Verify();
        Assert.Equal((ScalarType.BFloat16, ScalarType.BFloat16), (checkpoint.Manifest.DType, checkpoint.Manifest.Job.DType));
        var rewritten = JsonNode.Parse(checkpoint.Manifest.ToJson())!.AsObject();
        Assert.Equal(("bfloat16", "bfloat16"), ((string)rewritten["dType"]!, (string)rewritten["job"]!["dType"]!));
    }

    [Fact]
    public void A_manifest_with_an_unknown_dtype_is_invalid_data_naming_the_field_and_the_accepted_names()
    {
        string job = FixtureWithManifest(written => written["dType"] = "f8");
        var e = Assert.Throws<InvalidDataException>(() => new CheckpointStore(scratch.Root).Open(job));
        Assert.Contains("DType: 'f8' is not a dtype; use one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64).", e.Message);
    }
}
