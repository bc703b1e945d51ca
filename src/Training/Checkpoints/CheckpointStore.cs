using System.Collections.Concurrent;
using System.Text;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Checkpoints under a root directory: {root}/{job}/step-{000000123}/ holds trunk.safetensors,
/// shard-{first}-{end}.safetensors per shard and manifest.json, {root}/{job}/latest names the newest step and
/// {root}/{job}/best the one with the lowest validation loss.
/// A step directory appears only complete (written aside, fsynced, renamed), and "latest" is replaced atomically,
/// so a crash at any point leaves the previous checkpoint in place. One process writes a job's checkpoints at a time.
/// </summary>
public sealed class CheckpointStore
{
    const string PendingPrefix = ".pending-";
    const string TrashPrefix = ".trash-";
    const string DamagedPrefix = ".damaged-";
    const int MaxLatestBytes = 64;

    public string Root { get; }
    readonly ConcurrentDictionary<string, byte> writing = new();   // this store's pending directories, spared by cleanup

    public CheckpointStore(string root)
    {
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        Directory.CreateDirectory(Root);
    }

    /// <summary>{root}/{job}, after checking the name; throws an <see cref="ArgumentException"/> for names that could escape.</summary>
    public string JobDirectory(string job) => CheckpointPaths.Inside(Root, CheckpointPaths.ValidateJobName(job));

    /// <summary>
    /// Starts the checkpoint of <paramref name="job"/> after <paramref name="step"/> training steps. Leftovers of
    /// writes that crashed are removed first. A step that already has a checkpoint is an <see cref="IOException"/>.
    /// <paramref name="job"/> is a validated spec (the job is running).
    /// </summary>
    public PendingCheckpoint Begin(JobSpec job, long step, long optimizerStep)
    {
        string jobDirectory = JobDirectory(job.Name);
        string final = CheckpointPaths.Inside(Root, job.Name, CheckpointPaths.StepDirectoryName(step));
        if (Directory.Exists(final)) throw new IOException($"job '{job.Name}' already has a checkpoint at step {step}: '{final}'.");
        if (!Directory.Exists(jobDirectory))
        {
            Directory.CreateDirectory(jobDirectory);
            DurableFiles.SyncDirectory(Root);   // so the job directory, and with it every checkpoint, survives a power loss
        }
        RemoveLeftovers(jobDirectory);
        string pending = CheckpointPaths.Inside(Root, job.Name, $"{PendingPrefix}{CheckpointPaths.StepDirectoryName(step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(pending);
        writing[pending] = 0;
        return new PendingCheckpoint(this, new CheckpointTicket(pending, job, step, optimizerStep));
    }

    /// <summary>Writes and publishes a whole checkpoint from exported states (one per tower shard, any split).</summary>
    public CheckpointManifest Save(JobSpec job, long step, ShardState trunk, IEnumerable<ShardState> towers, ValidationRecord? validation = null)
    {
        using var pending = Begin(job, step, trunk.OptimizerStep);
        var trunkFile = pending.WriteTrunk(trunk);
        var shardFiles = towers.Select(pending.WriteTowers).ToList();
        return pending.Commit(trunkFile, shardFiles, validation);
    }

    /// <summary>
    /// Renames the pending directory to its step directory, then points "latest" at it if it is the newest. A damaged
    /// pointer is replaced: the step directories it could name are all still there.
    /// </summary>
    internal void Publish(CheckpointTicket pending)
    {
        string jobDirectory = JobDirectory(pending.Job.Name);
        string stepName = CheckpointPaths.StepDirectoryName(pending.Step);
        Directory.Move(pending.Directory, CheckpointPaths.Inside(Root, pending.Job.Name, stepName));   // rename(2): atomic
        writing.TryRemove(pending.Directory, out _);
        DurableFiles.SyncDirectory(jobDirectory);
        if (PointedStepOrNull(pending.Job.Name) is not { } latest || latest < pending.Step) PointAt(pending.Job.Name, pending.Step);
    }

    internal void Abandon(string pendingDirectory)
    {
        writing.TryRemove(pendingDirectory, out _);
        if (Directory.Exists(pendingDirectory)) Directory.Delete(pendingDirectory, recursive: true);
    }

    /// <summary>
    /// The step "latest" names; without the pointer (a crash between publishing and pointing) the newest step; null when
    /// the job has no checkpoint. A damaged pointer is an <see cref="InvalidDataException"/>, not a fresh start.
    /// </summary>
    public long? LatestStep(string job) => PointedStep(job) ?? (List(job) is [.., var newest] ? newest : null);

    /// <summary>
    /// The step of the job's best checkpoint by validation loss (<see cref="MarkBest"/>), or null when it has none, or
    /// that checkpoint is gone (set aside as damaged).
    /// </summary>
    public long? BestStep(string job)
    {
        try { return PointedStep(job, CheckpointPaths.BestFileName); }
        catch (InvalidDataException) { return null; }
    }

    /// <summary>Points "best" at the published checkpoint of <paramref name="step"/>, which pruning then keeps.</summary>
    public void MarkBest(string job, long step)
    {
        string directory = CheckpointPaths.Inside(Root, CheckpointPaths.ValidateJobName(job), CheckpointPaths.StepDirectoryName(step));
        if (!Directory.Exists(directory)) throw new FileNotFoundException($"job '{job}' has no checkpoint at step {step} to mark best: '{directory}'.");
        PointAt(job, step, CheckpointPaths.BestFileName);
    }

    /// <summary>The step the pointer file <paramref name="pointer"/> ("latest", "best") names, null without the file.</summary>
    long? PointedStep(string job, string pointer = CheckpointPaths.LatestFileName)
    {
        string path = CheckpointPaths.Inside(Root, CheckpointPaths.ValidateJobName(job), pointer);
        if (!File.Exists(path)) return null;
        var info = new FileInfo(path);
        if (info.Length > MaxLatestBytes) throw new InvalidDataException($"{path}: {info.Length} bytes; a step pointer has at most {MaxLatestBytes}.");
        string name = File.ReadAllText(path).TrimEnd('\n');
        if (!CheckpointPaths.TryParseStep(name, out long step))
            throw new InvalidDataException($"{path}: '{name}' is not a step directory name like {CheckpointPaths.StepDirectoryName(123)}.");
        if (!Directory.Exists(CheckpointPaths.Inside(Root, job, name)))
            throw new InvalidDataException($"{path}: names '{name}', which does not exist.");
        return step;
    }

    /// <summary>The steps with a published checkpoint, oldest first.</summary>
    public IReadOnlyList<long> List(string job)
    {
        string jobDirectory = JobDirectory(job);
        if (!Directory.Exists(jobDirectory)) return [];
        return Directory.EnumerateDirectories(jobDirectory)
            .Select(d => CheckpointPaths.TryParseStep(Path.GetFileName(d), out long step) ? step : -1)
            .Where(step => step >= 0)
            .Order()
            .ToList();
    }

    /// <summary>
    /// The checkpoint at <paramref name="step"/> (the latest when null), its manifest read and checked; the tensor files
    /// are verified as they are read. No checkpoint is a <see cref="FileNotFoundException"/>.
    /// </summary>
    public Checkpoint Open(string job, long? step = null)
    {
        long chosen = step ?? LatestStep(job) ?? throw new FileNotFoundException($"job '{job}' has no checkpoint under '{Root}'.");
        string directory = CheckpointPaths.Inside(Root, CheckpointPaths.ValidateJobName(job), CheckpointPaths.StepDirectoryName(chosen));
        if (!Directory.Exists(directory)) throw new FileNotFoundException($"job '{job}' has no checkpoint at step {chosen}: '{directory}' does not exist.");
        return Checkpoint.Open(directory, job, chosen);
    }

    /// <summary>
    /// The newest checkpoint of the job that verifies (every file's length and SHA-256 against its manifest, and its
    /// tensors' names, shapes and dtypes), trying step directories newest first, whatever "latest" says: a crash between
    /// publishing a step and pointing at it leaves the pointer one behind. When an older step is taken, each newer one
    /// that failed is reported through <paramref name="skipped"/> and moved aside to ".damaged-step-N-..." (kept for
    /// inspection, out of the way of the step training will write again), and "latest" is pointed at the one taken.
    /// When none verifies, nothing is moved and the <see cref="InvalidDataException"/> names every step's problem.
    /// </summary>
    public Checkpoint OpenNewestIntact(string job, Action<long, string> skipped)
    {
        var damaged = new List<(long Step, string Problem)>();
        foreach (long step in List(job).Reverse())
        {
            Checkpoint checkpoint;
            try
            {
                checkpoint = Open(job, step);
                checkpoint.Verify();
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                damaged.Add((step, e.Message));
                continue;
            }
            foreach (var (bad, problem) in damaged)
            {
                skipped(bad, problem);
                Directory.Move(CheckpointPaths.Inside(Root, job, CheckpointPaths.StepDirectoryName(bad)),
                    CheckpointPaths.Inside(Root, job, $"{DamagedPrefix}{CheckpointPaths.StepDirectoryName(bad)}-{Guid.NewGuid():N}"));
            }
            if (damaged.Count > 0) DurableFiles.SyncDirectory(JobDirectory(job));
            if (PointedStepOrNull(job) != step) PointAt(job, step);
            return checkpoint;
        }
        if (damaged.Count == 0) throw new FileNotFoundException($"job '{job}' has no checkpoint under '{JobDirectory(job)}'.");
        throw new InvalidDataException($"job '{job}' has no intact checkpoint under '{JobDirectory(job)}': " +
                                       string.Join("; ", damaged.Select(d => $"step {d.Step}: {d.Problem}")));
    }

    long? PointedStepOrNull(string job)
    {
        try { return PointedStep(job); }
        catch (InvalidDataException) { return null; }
    }

    void PointAt(string job, long step, string pointer = CheckpointPaths.LatestFileName) =>
        DurableFiles.ReplaceAtomically(Path.Combine(JobDirectory(job), pointer),
            stream => stream.Write(Encoding.UTF8.GetBytes(CheckpointPaths.StepDirectoryName(step) + "\n")));

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints of the job, never the ones "latest" and "best" name.</summary>
    public IReadOnlyList<long> Prune(string job, int keep)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keep);
        string jobDirectory = JobDirectory(job);
        var (latest, best) = (LatestStep(job), BestStep(job));
        var doomed = List(job).SkipLast(keep).Where(step => step != latest && step != best).ToList();
        foreach (long step in doomed)
        {
            // Renamed first, so a crash mid-delete leaves a leftover to clean, never a half-deleted step directory.
            string trash = CheckpointPaths.Inside(Root, job, $"{TrashPrefix}{CheckpointPaths.StepDirectoryName(step)}-{Guid.NewGuid():N}");
            Directory.Move(CheckpointPaths.Inside(Root, job, CheckpointPaths.StepDirectoryName(step)), trash);
            Directory.Delete(trash, recursive: true);
        }
        DurableFiles.SyncDirectory(jobDirectory);
        return doomed;
    }

    /// <summary>Pending directories of writes that crashed, and trash of interrupted prunes.</summary>
    void RemoveLeftovers(string jobDirectory)
    {
        foreach (string directory in Directory.EnumerateDirectories(jobDirectory))
        {
            string name = Path.GetFileName(directory);
            if ((name.StartsWith(PendingPrefix, StringComparison.Ordinal) && !writing.ContainsKey(directory))
                || name.StartsWith(TrashPrefix, StringComparison.Ordinal))
                Directory.Delete(directory, recursive: true);
        }
    }
}
