using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Orchestrator.Training.Checkpoints;

/// <summary>A file of a checkpoint: its name inside the step directory, its length and its SHA-256 (lowercase hex).</summary>
public sealed record CheckpointFile(string File, long Bytes, string Sha256)
{
    /// <summary>The length and checksum of <paramref name="path"/> as it is on disk now.</summary>
    public static CheckpointFile Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20);
        return new CheckpointFile(Path.GetFileName(path), stream.Length, Convert.ToHexStringLower(SHA256.HashData(stream)));
    }
}

/// <summary>
/// A file holding the towers of groups [FirstGroup, FirstGroup + GroupCount). The manifest lists only these fields:
/// <see cref="Groups"/> and <see cref="Content"/> are views of them. Format 1 wrote them out too, as "groups" and
/// "content"; the reader skips them (names marked <see cref="JsonIgnoreAttribute"/> are known to the strict binding,
/// not unmapped), so the fields above, which it checks, are the only source.
/// </summary>
public sealed record ShardFile(string File, int FirstGroup, int GroupCount, long Bytes, string Sha256)
{
    [JsonIgnore] public GroupRange Groups => new(FirstGroup, GroupCount);
    [JsonIgnore] public CheckpointFile Content => new(File, Bytes, Sha256);
}

/// <summary>
/// manifest.json of a checkpoint: the job, how far it trained, which file holds which groups, and every file's
/// checksum. It is written last, so a step directory with a manifest is complete.
/// </summary>
public sealed partial record CheckpointManifest
{
    /// <summary>2: each shard listed once (format 1 repeated its range and file as "groups" and "content"; still read).</summary>
    public const int CurrentFormat = 2;
    public const int OldestFormat = 1;
    public const string FileName = "manifest.json";
    public const long MaxBytes = 16L << 20;

    public int FormatVersion { get; init; } = CurrentFormat;
    public required JobSpec Job { get; init; }
    /// <summary>Training steps completed: the next step trains on batch number Step.</summary>
    public required long Step { get; init; }
    /// <summary>AdamW steps every parameter has taken (its bias corrections depend on it).</summary>
    public required long OptimizerStep { get; init; }
    [JsonConverter(typeof(DTypeJsonConverter))]
    public required TorchSharp.torch.ScalarType DType { get; init; }
    public required DateTimeOffset CreatedUtc { get; init; }
    public required CheckpointFile Trunk { get; init; }
    public required IReadOnlyList<ShardFile> Shards { get; init; }
    /// <summary>Where validation stood (best loss and step, evaluations since); null for jobs without validation, and in older manifests.</summary>
    public ValidationRecord? Validation { get; init; }

    static readonly JsonSerializerOptions Json = new(JobSpec.Json)
    {
        RespectNullableAnnotations = true,                  // "job": null is an error, not a null reference later
        RespectRequiredConstructorParameters = true,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses and validates a manifest read from <paramref name="path"/>; problems are <see cref="InvalidDataException"/>s.</summary>
    public static CheckpointManifest Parse(byte[] json, string path)
    {
        CheckpointManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<CheckpointManifest>(json, Json); }
        catch (Exception e) when (e is JsonException or JobSpecException) { throw new InvalidDataException($"{path}: not a valid manifest: {e.Message}"); }
        return (manifest ?? throw new InvalidDataException($"{path}: the manifest is null.")).Validate(path);
    }

    /// <summary>Throws an <see cref="InvalidDataException"/> naming the first inconsistency; returns this manifest.</summary>
    public CheckpointManifest Validate(string path)
    {
        InvalidDataException Bad(string problem) => new($"{path}: {problem}");
        if (FormatVersion is < OldestFormat or > CurrentFormat)
            throw Bad($"format version {FormatVersion}; this reader knows versions {OldestFormat} to {CurrentFormat}.");
        // The serializer checks null only for properties, not for the elements of lists.
        if (Shards.Contains(null) || Job.Devices.Contains(null)) throw Bad("'shards' and 'job.devices' may not hold null.");
        try { Job.Validate(); }
        catch (JobSpecException e) { throw Bad($"the job spec is invalid: {e.Message}"); }
        if (Step < 0 || OptimizerStep < 0) throw Bad($"negative step ({Step}) or optimizer step ({OptimizerStep}).");
        if (DType != Job.DType)
            throw Bad($"dtype '{Kernels.DTypeNames.Name(DType)}' is not the job's dtype '{Kernels.DTypeNames.Name(Job.DType)}'.");
        CheckFile(Trunk, Bad);
        int next = 0;
        var names = new HashSet<string>(StringComparer.Ordinal) { Trunk.File };
        foreach (var shard in Shards)
        {
            CheckFile(shard.Content, Bad);
            if (!names.Add(shard.File)) throw Bad($"the file '{shard.File}' is listed twice.");
            if (shard.FirstGroup != next || shard.GroupCount < 1 || shard.GroupCount > Job.Shape.Groups - next)
                throw Bad($"'{shard.File}' holds groups {shard.Groups}, but the shards must cover [0, {Job.Shape.Groups}) in order; the next group is {next}.");
            next = shard.Groups.End;
        }
        if (next != Job.Shape.Groups) throw Bad($"the shards cover groups [0, {next}) of [0, {Job.Shape.Groups}).");
        return this;
    }

    static void CheckFile(CheckpointFile file, Func<string, InvalidDataException> bad)
    {
        if (!FileNamePattern().IsMatch(file.File))
            throw bad($"'{file.File}' is not a plain file name ending in .safetensors.");
        if (file.Bytes < 8) throw bad($"'{file.File}' is listed with {file.Bytes} bytes, too few for a safetensors file.");
        if (!Sha256Pattern().IsMatch(file.Sha256)) throw bad($"'{file.File}' has checksum '{file.Sha256}', not 64 lowercase hex digits.");
    }

    [GeneratedRegex(@"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\.safetensors\z")]
    private static partial Regex FileNamePattern();

    [GeneratedRegex(@"^[0-9a-f]{64}\z")]
    private static partial Regex Sha256Pattern();
}
