using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>Saving the single-process trainer to a <see cref="CheckpointStore"/> and resuming from it.</summary>
public sealed partial class InProcessTrainer
{
    /// <summary>Saves the trunk and towers after <see cref="StepCount"/> steps.</summary>
    public CheckpointManifest SaveCheckpoint(CheckpointStore store)
    {
        using var trunk = ShardState.Export(Trunk);
        using var towers = ShardState.Export(Towers);
        return store.Save(spec, StepCount, trunk, [towers]);
    }

    /// <summary>
    /// The job's trainer as of its latest checkpoint (or <paramref name="step"/>): the checkpoint's spec, weights, AdamW
    /// state and step count. Since batch i depends only on (seed, i), training on matches the run that was never stopped.
    /// </summary>
    public static InProcessTrainer Resume(CheckpointStore store, string job, Device? device = null, long? step = null)
    {
        var checkpoint = store.Open(job, step);
        var trainer = new InProcessTrainer(checkpoint.Manifest.Job, device);
        try
        {
            using (var trunk = checkpoint.ReadTrunk()) trunk.RestoreInto(trainer.Trunk);
            using (var towers = checkpoint.ReadTowers(trainer.Towers.Groups)) towers.RestoreInto(trainer.Towers);
            trainer.StepCount = checkpoint.Manifest.Step;
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }
}
