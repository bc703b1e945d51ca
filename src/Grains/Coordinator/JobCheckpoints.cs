using Microsoft.Extensions.Logging;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Grains;

/// <summary>
/// A coordinator's hold on its job's checkpoints: which one a start or a recovery continues from (the newest intact
/// one; for a resume, checked to train the same model), which step was saved last, and the saving itself.
/// </summary>
internal sealed class JobCheckpoints(string job, ILogger log)
{
    /// <summary>The step of the newest checkpoint the job saved or continued from; null before the first.</summary>
    public long? LastSaved { get; set; }

    /// <summary>Which checkpoint the job continued from when newer ones were damaged, and why they were set aside.</summary>
    public string? Note { get; private set; }

    /// <summary>The checkpoint a resumed job continues from: the newest intact one, checked to train the same model as <paramref name="spec"/>.</summary>
    public Checkpoint ToResume(JobSpec spec, CheckpointStore? store)
    {
        if (store is null)
            throw new JobSpecException("Checkpoint.Directory", "is required to resume a job.");
        var checkpoint = NewestIntact(store)
            ?? throw new InvalidOperationException($"job '{job}' has no checkpoint under '{store.JobDirectory(job)}' to resume from.");
        if (checkpoint.Manifest.Job.ModelDifference(spec) is { } field)
            throw new JobSpecException(field, $"differs from the checkpoint at step {checkpoint.Manifest.Step}, which trains another model; " +
                                              "resume with the spec it was saved with (only Steps, Devices, Transport and Checkpoint may change).");
        return checkpoint;
    }

    /// <summary>
    /// The newest checkpoint that verifies, or null when the job has none; each newer one that does not is set aside,
    /// logged, and named in <see cref="Note"/>, so the user sees which step training continues from and why.
    /// </summary>
    public Checkpoint? NewestIntact(CheckpointStore store)
    {
        Note = null;
        if (store.List(job).Count == 0) return null;
        var skipped = new List<string>();
        var checkpoint = store.OpenNewestIntact(job, (step, why) =>
        {
            log.LogWarning("Job {Job}: the checkpoint at step {Step} is damaged and was set aside: {Problem}", job, step, why);
            skipped.Add($"step {step} ({why})");
        });
        if (skipped.Count > 0)
            Note = $"continued from step {checkpoint.Manifest.Step}; newer checkpoints were damaged and set aside as .damaged-*: {string.Join("; ", skipped)}";
        return checkpoint;
    }

    /// <summary>
    /// Every worker writes its shard and the coordinator the trunk into one pending checkpoint of <paramref name="step"/>,
    /// which becomes visible only when all parts are on disk (a crash leaves the previous checkpoint as the latest); then
    /// it is marked "best" when <paramref name="best"/>, and old ones are pruned.
    /// </summary>
    public async Task SaveAsync(RunningJob running, long step, bool best = false)
    {
        var store = running.Checkpoints ?? throw new InvalidOperationException($"job '{job}' has no checkpoint directory.");
        using var pending = await Task.Run(() => store.Begin(running.Spec, step, running.Trunk.Optimizer!.StepCount));
        var shards = await Task.WhenAll(running.Workers.Select(w => w.Grain.CheckpointAsync(pending.Ticket)));
        using var trunkState = await running.Executor.RunAsync(() => ShardState.Export(running.Trunk));
        await Task.Run(() =>
        {
            pending.Commit(pending.WriteTrunk(trunkState), shards, running.EarlyStopping.State);
            Prune(store, running.Spec, step, best);
        });
        LastSaved = step;
        log.LogInformation("Job {Job} checkpointed at step {Step} in {Directory}", job, step, store.JobDirectory(job));
    }

    /// <summary>Marks <paramref name="step"/> best: saves it first unless it is the step saved last.</summary>
    public Task MarkBestAsync(RunningJob running, long step)
    {
        var store = running.Checkpoints ?? throw new InvalidOperationException($"job '{job}' has no checkpoint directory.");
        return LastSaved == step ? Task.Run(() => Prune(store, running.Spec, step, best: true)) : SaveAsync(running, step, best: true);
    }

    /// <summary>Saves <paramref name="step"/> unless it is the step saved last; returns the newest saved step (null: no directory).</summary>
    public async Task<long?> SaveIfUnsavedAsync(RunningJob running, long step)
    {
        if (running.Checkpoints is null) return null;
        if (LastSaved != step) await SaveAsync(running, step);
        return LastSaved;
    }

    /// <summary>
    /// Marks <paramref name="step"/>'s checkpoint "best" when <paramref name="best"/>, then prunes to Checkpoint.Keep:
    /// marking comes first, since pruning keeps whatever "best" names and would keep the old one.
    /// </summary>
    void Prune(CheckpointStore store, JobSpec spec, long step, bool best)
    {
        if (best) store.MarkBest(job, step);
        store.Prune(job, spec.Checkpoint.Keep);
    }
}
