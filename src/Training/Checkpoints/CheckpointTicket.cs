using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// What a worker needs to write its part of a pending checkpoint: the pending directory, the job and the step.
/// Plain data, so a coordinator can hand it to workers in other grains or processes that share the file system;
/// they write their files with it and return the <see cref="ShardFile"/> for <see cref="PendingCheckpoint.Commit"/>.
/// </summary>
public sealed record CheckpointTicket(string Directory, JobSpec Job, long Step, long OptimizerStep)
{
    public const string TrunkFileName = "trunk.safetensors";

    public static string ShardFileName(GroupRange groups) => $"shard-{groups.First}-{groups.End}.safetensors";

    /// <summary>
    /// Writes shard-{first}-{end}.safetensors and flushes it to disk. Safe to call from several threads at once, and
    /// again for the same groups (a retried call replaces the file whole).
    /// </summary>
    public ShardFile WriteTowers(ShardState towers)
    {
        var groups = towers.Groups ?? throw new ArgumentException("this state holds the trunk; use WriteTrunk.", nameof(towers));
        var file = Write(ShardFileName(groups), towers, StateLayout.TowerTensors(Job.Shape, groups, Job.DType));
        return new ShardFile(file.File, groups.First, groups.Count, file.Bytes, file.Sha256);
    }

    /// <summary>Writes trunk.safetensors and flushes it to disk.</summary>
    public CheckpointFile WriteTrunk(ShardState trunk)
    {
        if (trunk.Groups is not null) throw new ArgumentException($"this state holds {trunk.Describe()}; use WriteTowers.", nameof(trunk));
        return Write(TrunkFileName, trunk, StateLayout.TrunkTensors(Job.Shape, Job.DType));
    }

    CheckpointFile Write(string name, ShardState state, IEnumerable<(string Name, long[] Shape, ScalarType DType)> expected)
    {
        if (!System.IO.Directory.Exists(Directory)) throw new DirectoryNotFoundException($"the pending checkpoint '{Directory}' is gone (committed or abandoned).");
        if (state.OptimizerStep != OptimizerStep)
            throw new ArgumentException($"{state.Describe()} is at optimizer step {state.OptimizerStep}, the checkpoint at {OptimizerStep}.");
        // A file the reader would reject must not be written in the first place.
        if (StateLayout.Mismatch(state.Tensors, expected) is { } problem)
            throw new ArgumentException($"{state.Describe()}: {problem}");
        string path = Path.Combine(Directory, name);
        DurableFiles.ReplaceAtomically(path, stream => SafeTensors.Write(stream, state.Tensors, StateLayout.Metadata(Job.Name, Step, OptimizerStep, state.Groups)));
        return CheckpointFile.Of(path);
    }
}
