using Orchestrator.Training.Data;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// A checkpoint being written into a temporary directory next to the job's step directories. Shards may be written
/// concurrently (each writes its own file); <see cref="Commit"/> writes the manifest and publishes the directory
/// with one rename. Disposing it uncommitted removes the temporary directory; a crash leaves it behind, and it is
/// ignored by readers and removed by the next <see cref="CheckpointStore.Begin"/> of the job.
/// </summary>
public sealed class PendingCheckpoint : IDisposable
{
    public const string TrunkFileName = "trunk.safetensors";

    readonly CheckpointStore store;
    public JobSpec Job { get; }
    public long Step { get; }
    public long OptimizerStep { get; }
    /// <summary>The temporary directory the files go to.</summary>
    public string Directory { get; }
    bool committed;

    internal PendingCheckpoint(CheckpointStore store, JobSpec job, long step, long optimizerStep, string directory)
    {
        this.store = store;
        Job = job;
        Step = step;
        OptimizerStep = optimizerStep;
        Directory = directory;
    }

    public static string ShardFileName(GroupRange groups) => $"shard-{groups.First}-{groups.End}.safetensors";

    /// <summary>Writes shard-{first}-{end}.safetensors and flushes it to disk. Safe to call from several threads at once.</summary>
    public ShardFile WriteTowers(ShardState towers)
    {
        var groups = towers.Groups ?? throw new ArgumentException("this state holds the trunk; use WriteTrunk.", nameof(towers));
        var file = Write(ShardFileName(groups), towers, StateLayout.TowerTensors(Job.Shape, groups));
        return new ShardFile(file.File, groups.First, groups.Count, file.Bytes, file.Sha256);
    }

    /// <summary>Writes trunk.safetensors and flushes it to disk.</summary>
    public CheckpointFile WriteTrunk(ShardState trunk)
    {
        if (trunk.Groups is not null) throw new ArgumentException($"this state holds {trunk.Describe()}; use WriteTowers.", nameof(trunk));
        return Write(TrunkFileName, trunk, StateLayout.TrunkTensors(Job.Shape));
    }

    CheckpointFile Write(string name, ShardState state, IEnumerable<(string Name, long[] Shape)> expected)
    {
        ObjectDisposedException.ThrowIf(committed, this);
        if (state.OptimizerStep != OptimizerStep)
            throw new ArgumentException($"{state.Describe()} is at optimizer step {state.OptimizerStep}, the checkpoint at {OptimizerStep}.");
        // A file the reader would reject must not be written in the first place.
        if (StateLayout.Mismatch(state.Tensors, expected, DTypes.Parse(Job.DType)) is { } problem)
            throw new ArgumentException($"{state.Describe()}: {problem}");
        string path = Path.Combine(Directory, name);
        DurableFiles.Create(path, stream => SafeTensors.Write(stream, state.Tensors, StateLayout.Metadata(Job.Name, Step, OptimizerStep, state.Groups)));
        return CheckpointFile.Of(path);
    }

    /// <summary>Writes the manifest, fsyncs the directory and publishes it as step-{Step}; the files must all be written.</summary>
    public CheckpointManifest Commit(CheckpointFile trunk, IEnumerable<ShardFile> shards)
    {
        ObjectDisposedException.ThrowIf(committed, this);
        string path = Path.Combine(Directory, CheckpointManifest.FileName);
        var manifest = Validated(new CheckpointManifest
        {
            Job = Job,
            Step = Step,
            OptimizerStep = OptimizerStep,
            DType = Job.DType,
            CreatedUtc = DateTimeOffset.UtcNow,
            Trunk = trunk,
            Shards = [.. shards.OrderBy(s => s.FirstGroup)],
        }, path);
        foreach (var file in manifest.Shards.Select(s => s.Content).Prepend(manifest.Trunk))
            if (CheckpointFile.Of(Path.Combine(Directory, file.File)) != file)
                throw new InvalidOperationException($"'{file.File}' in '{Directory}' is not the file that was written.");
        DurableFiles.Create(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(manifest.ToJson())));
        DurableFiles.SyncDirectory(Directory);
        store.Publish(this);
        committed = true;
        return manifest;
    }

    /// <summary>A manifest the caller got wrong (a group missing, a bad file name) is its mistake, not bad data.</summary>
    static CheckpointManifest Validated(CheckpointManifest manifest, string path)
    {
        try { return manifest.Validate(path); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, e); }
    }

    /// <summary>Abandons an uncommitted checkpoint: its temporary directory goes, nothing published is touched.</summary>
    public void Dispose()
    {
        if (committed) return;
        committed = true;
        store.Abandon(Directory);
    }
}
