using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>Saving the single-process trainer to a <see cref="CheckpointStore"/> and resuming from it.</summary>
public sealed partial class InProcessTrainer
{
    /// <summary>Saves the trunk and towers after <see cref="StepCount"/> steps.</summary>
    public CheckpointManifest SaveCheckpoint(CheckpointStore store) =>
        Save(store, ShardState.Export(Trunk), ShardState.Export(Towers), StepCount, EarlyStopping.State);

    /// <summary>
    /// Copies the state now (the snapshot is of this step) and writes it on the thread pool, so training can go on
    /// while the files are written and fsynced.
    /// </summary>
    public Task<CheckpointManifest> SaveCheckpointInBackground(CheckpointStore store)
    {
        var (trunk, towers, step, validation) = (ShardState.Export(Trunk), ShardState.Export(Towers), StepCount, EarlyStopping.State);
        return Task.Run(() => Save(store, trunk, towers, step, validation));
    }

    CheckpointManifest Save(CheckpointStore store, ShardState trunk, ShardState towers, long step, ValidationRecord? validation)
    {
        using (trunk)
        using (towers)
            return store.Save(spec, step, trunk, [towers], validation);
    }

    /// <summary>
    /// The job's trainer as of its newest intact checkpoint (or <paramref name="step"/>): the checkpoint's spec, weights,
    /// AdamW state and step count. Newer damaged checkpoints are set aside and reported through <paramref name="skipped"/>
    /// (<see cref="CheckpointStore.OpenNewestIntact"/>). Since batch i depends only on (seed, i), training on matches the
    /// run that was never stopped.
    /// </summary>
    public static InProcessTrainer Resume(CheckpointStore store, string job, Device? device = null, long? step = null,
        Action<long, string>? skipped = null)
    {
        var checkpoint = step is { } chosen ? store.Open(job, chosen) : store.OpenNewestIntact(job, skipped ?? ((_, _) => { }));
        var trainer = new InProcessTrainer(checkpoint.Manifest.Job, device);
        try
        {
            using (var trunk = checkpoint.ReadTrunk()) trunk.RestoreInto(trainer.Trunk);
            using (var towers = checkpoint.ReadTowers(trainer.Towers.Groups)) towers.RestoreInto(trainer.Towers);
            trainer.StepCount = checkpoint.Manifest.Step;
            trainer.EarlyStopping = new EarlyStopping(trainer.spec.Validation.EarlyStopPatience, checkpoint.Manifest.Validation);
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }
}
