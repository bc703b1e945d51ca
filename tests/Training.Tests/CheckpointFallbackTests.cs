using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Training.Tests;

/// <summary>Resuming takes the newest checkpoint that verifies, whatever "latest" says, and sets damaged ones aside.</summary>
public sealed class CheckpointFallbackTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    /// <summary>A trainer checkpointed after 3 and 6 steps, kept training to 9 for the expected state.</summary>
    (CheckpointStore Store, JobSpec Spec, InProcessTrainer Uninterrupted) TrainedWithTwoCheckpoints()
    {
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        var trainer = CheckpointJobs.Trained(spec, steps: 3);
        trainer.SaveCheckpoint(store);
        for (int i = 0; i < 3; i++) trainer.Step();
        trainer.SaveCheckpoint(store);
        return (store, spec, trainer);
    }

    [Fact]
    public void A_crash_between_publishing_a_step_and_pointing_at_it_resumes_from_the_newer_step()
    {
        var (store, spec, uninterrupted) = TrainedWithTwoCheckpoints();
        using (uninterrupted)
        {
            // The step directory was renamed into place, then the process died before "latest" was replaced.
            File.WriteAllText(Path.Combine(store.JobDirectory(spec.Name), CheckpointPaths.LatestFileName), "step-000000003\n");
            var skipped = new List<long>();
            using var resumed = InProcessTrainer.Resume(store, spec.Name, skipped: (step, _) => skipped.Add(step));
            Assert.Equal(6, resumed.StepCount);
            Assert.Empty(skipped);
            Assert.Equal(6, store.LatestStep(spec.Name));
            for (int i = 0; i < 3; i++) Assert.Equal(uninterrupted.Step().Loss, resumed.Step().Loss);
            Assert.Equal(9, resumed.SaveCheckpoint(store).Step);   // training on checkpoints again without "already has a checkpoint"
        }
    }

    [Fact]
    public void A_damaged_newest_checkpoint_is_set_aside_and_training_continues_from_the_one_before()
    {
        var (store, spec, uninterrupted) = TrainedWithTwoCheckpoints();
        uninterrupted.Dispose();
        var step6 = Path.Combine(store.JobDirectory(spec.Name), "step-000000006");
        var shard = Directory.GetFiles(step6, "shard-*.safetensors")[0];
        var bytes = File.ReadAllBytes(shard);
        bytes[^5] ^= 0x5A;   // one flipped byte of tensor data
        File.WriteAllBytes(shard, bytes);

        var skipped = new List<(long Step, string Why)>();
        using var resumed = InProcessTrainer.Resume(store, spec.Name, skipped: (step, why) => skipped.Add((step, why)));
        Assert.Equal(3, resumed.StepCount);
        var (skippedStep, why) = Assert.Single(skipped);
        Assert.Equal(6, skippedStep);
        Assert.Contains("checksum mismatch", why);
        Assert.False(Directory.Exists(step6));
        var aside = Assert.Single(Directory.GetDirectories(store.JobDirectory(spec.Name), ".damaged-step-000000006-*"));
        Assert.True(File.Exists(Path.Combine(aside, Path.GetFileName(shard))), "the damaged checkpoint is kept for inspection");
        Assert.Equal(3, store.LatestStep(spec.Name));

        using var reference = CheckpointJobs.Trained(spec, steps: 3);
        for (int i = 0; i < 3; i++) Assert.Equal(reference.Step().Loss, resumed.Step().Loss);
        Assert.Equal(6, resumed.SaveCheckpoint(store).Step);   // the step that was damaged is written again
        Assert.Equal([3L, 6L], store.List(spec.Name));
        using var again = InProcessTrainer.Resume(store, spec.Name);
        CheckpointJobs.AssertSameTowers(reference.Towers, again.Towers);
    }

    [Fact]
    public void With_every_checkpoint_damaged_resuming_fails_naming_each_problem_and_moves_nothing()
    {
        var (store, spec, uninterrupted) = TrainedWithTwoCheckpoints();
        uninterrupted.Dispose();
        foreach (var manifest in Directory.GetFiles(store.JobDirectory(spec.Name), CheckpointManifest.FileName, SearchOption.AllDirectories))
            File.WriteAllText(manifest, "{ not json");
        var skipped = new List<long>();
        var e = Assert.Throws<InvalidDataException>(() => InProcessTrainer.Resume(store, spec.Name, skipped: (step, _) => skipped.Add(step)));
        Assert.Contains("no intact checkpoint", e.Message);
        Assert.Contains("step 6: ", e.Message);
        Assert.Contains("step 3: ", e.Message);
        Assert.Empty(skipped);
        Assert.Equal([3L, 6L], store.List(spec.Name));
    }
}
