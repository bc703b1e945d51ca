using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Checkpointing and restoring release every tensor they make (counted process-wide, so not in parallel).</summary>
[Collection(nameof(TensorLifetimeTests))]
public sealed class CheckpointLifetimeTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Saving_resuming_and_restoring_other_splits_leave_no_live_tensors_behind()
    {
        var spec = CheckpointJobs.Small(new Check());
        var store = new CheckpointStore(scratch.Root);
        LiveTensors.WithoutCollection(() =>
        {
            long before = LiveTensors.Count;
            using (var trainer = CheckpointJobs.Trained(spec, steps: 2))
            {
                trainer.SaveCheckpoint(store);
                trainer.Step();
                trainer.SaveCheckpoint(store);
            }
            using (var resumed = InProcessTrainer.Resume(store, spec.Name)) resumed.Step();
            var checkpoint = store.Open(spec.Name);
            foreach (var range in ShardAssignment.Assign(spec.Shape.Groups, 2))
                checkpoint.CreateTowers(range, CPU).Dispose();
            checkpoint.CreateTrunk(CPU).Dispose();
            checkpoint.Verify();
            Assert.Equal(before, LiveTensors.Count);
        });
    }
}
