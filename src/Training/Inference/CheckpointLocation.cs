using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Training.Inference;

/// <summary>Which checkpoint of a job directory to take: the one "latest" names, or the one "best" names.</summary>
public enum CheckpointPointer { Latest, Best }

/// <summary>
/// The checkpoint a user names by directory: a step directory ({root}/{job}/step-000000123) as it is, or a job
/// directory ({root}/{job}) through its "latest" or "best" pointer. Both are opened through <see cref="CheckpointStore"/>
/// with the job directory's parent as the root, so the manifest is checked as a resuming job checks it. Problems are
/// <see cref="FileNotFoundException"/>s (nothing there) and <see cref="InvalidDataException"/>s (something damaged).
/// </summary>
public static class CheckpointLocation
{
    public static Checkpoint Open(string directory, CheckpointPointer pointer)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (!Directory.Exists(full)) throw new FileNotFoundException($"checkpoint directory '{directory}' does not exist.");
        string name = Path.GetFileName(full);
        string parent = Path.GetDirectoryName(full) ?? throw new FileNotFoundException($"'{directory}' is not a checkpoint directory.");
        if (CheckpointPaths.TryParseStep(name, out long step))
        {
            if (pointer == CheckpointPointer.Best)
                throw new ArgumentException($"'{directory}' is one step's checkpoint; --best chooses among a job directory's checkpoints (give '{parent}').");
            var root = Path.GetDirectoryName(parent) ?? throw new FileNotFoundException($"'{directory}' is not inside a job directory.");
            return new CheckpointStore(root).Open(Path.GetFileName(parent), step);
        }
        if (CheckpointPaths.JobNameProblem(name) is not null)
            throw new FileNotFoundException($"'{directory}' is neither a step directory (JOB/step-000000123) nor a job directory.");
        var store = new CheckpointStore(parent);
        long chosen = pointer == CheckpointPointer.Best
            ? store.BestStep(name) ?? throw new FileNotFoundException(
                $"job directory '{directory}' has no best checkpoint (the job was trained without validation data, or that checkpoint is gone).")
            : store.LatestStep(name) ?? throw new FileNotFoundException(
                $"'{directory}' holds no checkpoint: give a step directory (JOB/step-000000123) or a job directory with step directories.");
        return store.Open(name, chosen);
    }
}
