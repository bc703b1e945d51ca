using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// A published checkpoint, read as hostile: every file's length and SHA-256 are checked against the manifest before
/// it is parsed, and its tensors against the job's names, shapes and dtype. Any group range can be restored,
/// whatever split wrote it: each group's tensors come from whichever file holds them.
/// </summary>
public sealed class Checkpoint
{
    public string Directory { get; }
    public CheckpointManifest Manifest { get; }
    JobSpec Job => Manifest.Job;

    Checkpoint(string directory, CheckpointManifest manifest)
    {
        Directory = directory;
        Manifest = manifest;
    }

    /// <summary>Reads and checks the manifest of the step directory; problems are <see cref="InvalidDataException"/>s.</summary>
    internal static Checkpoint Open(string directory, string job, long step)
    {
        string path = CheckpointPaths.Inside(directory, CheckpointManifest.FileName);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: the manifest is missing.");
        long length = new FileInfo(path).Length;
        if (length > CheckpointManifest.MaxBytes)
            throw new InvalidDataException($"{path}: {length} bytes, more than a manifest may have ({CheckpointManifest.MaxBytes}).");
        var manifest = CheckpointManifest.Parse(File.ReadAllBytes(path), path);
        if (manifest.Job.Name != job || manifest.Step != step)
            throw new InvalidDataException($"{path}: the manifest is for job '{manifest.Job.Name}' step {manifest.Step}, not '{job}' step {step}.");
        return new Checkpoint(directory, manifest);
    }

    /// <summary>The trunk's state; the caller owns it.</summary>
    public ShardState ReadTrunk() =>
        new(null, Manifest.OptimizerStep, ReadFile(Manifest.Trunk, null, StateLayout.TrunkTensors(Job.Shape, Job.DType).ToList()));

    /// <summary>The towers' state of <paramref name="groups"/>, gathered from the files that hold them; the caller owns it.</summary>
    public ShardState ReadTowers(GroupRange groups)
    {
        if (groups.First < 0 || groups.Count < 1 || groups.End > Job.Shape.Groups)
            throw new ArgumentOutOfRangeException(nameof(groups), $"groups {groups} are not inside [0, {Job.Shape.Groups}).");
        var gathered = new Dictionary<string, Tensor>();
        try
        {
            foreach (var shard in Manifest.Shards.Where(s => s.FirstGroup < groups.End && s.Groups.End > groups.First))
            {
                int first = Math.Max(shard.FirstGroup, groups.First), end = Math.Min(shard.Groups.End, groups.End);
                var part = ReadFile(shard.Content, shard.Groups, StateLayout.TowerTensors(Job.Shape, new GroupRange(first, end - first), Job.DType).ToList());
                foreach (var (name, tensor) in part) gathered.Add(name, tensor);
            }
            return new ShardState(groups, Manifest.OptimizerStep, gathered);
        }
        catch
        {
            foreach (var t in gathered.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>A trainable trunk on <paramref name="device"/> in the checkpointed state.</summary>
    public Trunk CreateTrunk(Device device)
    {
        using var state = ReadTrunk();
        var trunk = new Trunk(Job.Shape, Job.Seed, Job.DType, device, Job.Optimizer);
        return Restored(trunk, state.RestoreInto);
    }

    /// <summary>A trainable tower shard of <paramref name="groups"/> on <paramref name="device"/> in the checkpointed state.</summary>
    public TowerShard CreateTowers(GroupRange groups, Device device)
    {
        using var state = ReadTowers(groups);
        var shard = new TowerShard(Job.Shape, groups, Job.Seed, Job.DType, device, Job.Optimizer);
        return Restored(shard, state.RestoreInto);
    }

    /// <summary>Reads every file of the checkpoint once, checking it, and keeps nothing.</summary>
    public void Verify()
    {
        ReadTrunk().Dispose();
        ReadTowers(new GroupRange(0, Job.Shape.Groups)).Dispose();
    }

    static T Restored<T>(T part, Action<T> restore) where T : IDisposable
    {
        try
        {
            restore(part);
            return part;
        }
        catch
        {
            part.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The <paramref name="expected"/> tensors of a file after checking its length, checksum and metadata, and their
    /// names, shapes and dtype. Only they are read, so restoring a few groups from a large file costs only their memory.
    /// </summary>
    Dictionary<string, Tensor> ReadFile(CheckpointFile file, GroupRange? groups, IReadOnlyList<(string Name, long[] Shape, ScalarType DType)> expected)
    {
        string path = CheckpointPaths.Inside(Directory, file.File);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: the file is missing.");
        long length = new FileInfo(path).Length;
        if (length != file.Bytes) throw new InvalidDataException($"{path}: {length} bytes, but the manifest says {file.Bytes}.");
        var actual = CheckpointFile.Of(path);
        if (actual.Sha256 != file.Sha256)
            throw new InvalidDataException($"{path}: checksum mismatch: SHA-256 {actual.Sha256}, but the manifest says {file.Sha256}.");
        var names = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var tensors = SafeTensors.Read(path, out var metadata, names.Contains);
        try
        {
            StateLayout.UpcastLegacyWeights(tensors, Job.DType);
            foreach (var (key, value) in StateLayout.Metadata(Job.Name, Manifest.Step, Manifest.OptimizerStep, groups))
                if (!metadata.TryGetValue(key, out var found) || found != value)
                    throw new InvalidDataException($"{path}: metadata '{key}' is '{found}', but this checkpoint needs '{value}'.");
            if (StateLayout.Mismatch(tensors, expected) is { } problem)
                throw new InvalidDataException($"{path}: {problem}");
            return tensors;
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }
}
