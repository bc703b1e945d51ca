using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

/// <summary>Resuming a job from a checkpoint, and restoring a checkpoint into a different split of the groups.</summary>
public sealed class CheckpointResumeTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_resumed_run_matches_the_uninterrupted_run_bit_for_bit(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var spec = CheckpointJobs.Small(check, dtype);
        var store = new CheckpointStore(scratch.Root);
        using var uninterrupted = CheckpointJobs.Trained(spec, steps: 7);
        var manifest = uninterrupted.SaveCheckpoint(store);
        Assert.Equal(7, manifest.Step);
        var expectedLosses = Enumerable.Range(0, 6).Select(_ => uninterrupted.Step().Loss).ToArray();

        using var resumed = InProcessTrainer.Resume(store, spec.Name);
        using var fresh = new InProcessTrainer(spec);
        Assert.False(Same(fresh.Trunk.Weight, resumed.Trunk.Weight), "the checkpoint holds trained weights, not the initial ones");
        Assert.Equal(7, resumed.StepCount);
        var losses = Enumerable.Range(0, 6).Select(_ => resumed.Step().Loss).ToArray();

        Assert.Equal(expectedLosses, losses);   // exact: the same operations on the same bits
        Assert.Equal(uninterrupted.StepCount, resumed.StepCount);
        CheckpointJobs.AssertSameTrunk(uninterrupted.Trunk, resumed.Trunk);
        CheckpointJobs.AssertSameTowers(uninterrupted.Towers, resumed.Towers);
    }

    [Fact]
    public void A_bfloat16_checkpoint_from_before_float32_masters_resumes_with_its_weights_upcast()
    {
        using var scope = NewDisposeScope();
        const string job = "legacy-bf16";   // written by the trainer before master weights: bf16 weights, float32 moments
        CheckpointJobs.CopyFixture(job, scratch.Root);
        var store = new CheckpointStore(scratch.Root);
        var step = Path.Combine(scratch.Root, job, "step-000000006");
        var trunkFile = SafeTensors.Read(Path.Combine(step, "trunk.safetensors"));
        var towersFile = SafeTensors.Read(Path.Combine(step, "shard-0-3.safetensors"));
        Assert.Equal(ScalarType.BFloat16, trunkFile[ParameterNames.TrunkWeight].dtype);

        using var resumed = InProcessTrainer.Resume(store, job);
        Assert.Equal(6, resumed.StepCount);
        Assert.Equal(ScalarType.Float32, resumed.Trunk.Weight.dtype);
        Assert.True(Same(trunkFile[ParameterNames.TrunkWeight].to(ScalarType.Float32), resumed.Trunk.Weight), "the trunk weight, upcast exactly");
        Assert.True(Same(trunkFile["trunk.bias.exp_avg_sq"], resumed.Trunk.Optimizer!.ExpAvgSq[1]), "the moments as saved");
        Assert.True(Same(towersFile["groups.2.down.weight"].to(ScalarType.Float32), resumed.Towers.WDown[2]), "a tower weight, upcast exactly");
        Assert.True(Same(resumed.Towers.WDown.to(ScalarType.BFloat16), resumed.Towers.Weights[1].Working), "the working copy follows the master");

        var losses = Enumerable.Range(0, 4).Select(_ => resumed.Step().Loss).ToArray();
        Assert.All(losses, loss => Assert.True(double.IsFinite(loss) && loss > 0, $"loss {loss}"));
        var manifest = resumed.SaveCheckpoint(store);   // saved again: float32 masters from now on
        Assert.Equal(10, manifest.Step);
        Assert.Equal(ScalarType.Float32, SafeTensors.Read(Path.Combine(scratch.Root, job, "step-000000010", "trunk.safetensors"))[ParameterNames.TrunkWeight].dtype);
    }

    [Fact]
    public async Task A_background_save_holds_the_step_it_was_taken_at_while_training_goes_on()
    {
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        using var trainer = CheckpointJobs.Trained(spec, steps: 3);
        var saving = trainer.SaveCheckpointInBackground(store);
        var expectedLosses = Enumerable.Range(0, 4).Select(_ => trainer.Step().Loss).ToArray();   // while the files are written
        Assert.Equal(3, (await saving).Step);

        using var resumed = InProcessTrainer.Resume(store, spec.Name);
        Assert.Equal(expectedLosses, Enumerable.Range(0, 4).Select(_ => resumed.Step().Loss).ToArray());
        CheckpointJobs.AssertSameTowers(trainer.Towers, resumed.Towers);
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(3, 1)]
    [InlineData(2, 3)]
    [InlineData(5, 2)]
    public void A_checkpoint_written_in_one_split_restores_into_any_other(int writers, int readers)
    {
        using var scope = NewDisposeScope();
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        using var trained = CheckpointJobs.Trained(spec, steps: 4);
        using (var trunk = ShardState.Export(trained.Trunk))
        using (var all = ShardState.Export(trained.Towers))
        {
            var parts = ShardAssignment.Assign(spec.Shape.Groups, writers).Select(r => CheckpointJobs.Slice(all, r)).ToList();
            var manifest = store.Save(spec, trained.StepCount, trunk, parts);
            parts.ForEach(p => p.Dispose());
            Assert.Equal(writers, manifest.Shards.Count);
        }

        var checkpoint = store.Open(spec.Name);
        foreach (var range in ShardAssignment.Assign(spec.Shape.Groups, readers))
        {
            using var shard = checkpoint.CreateTowers(range, CPU);
            CheckpointJobs.AssertSameTowers(trained.Towers, shard);
        }
        using var restoredTrunk = checkpoint.CreateTrunk(CPU);
        CheckpointJobs.AssertSameTrunk(trained.Trunk, restoredTrunk);
    }

    [Fact]
    public void A_range_spanning_several_files_gathers_its_groups_from_each()
    {
        using var scope = NewDisposeScope();
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        using var trained = CheckpointJobs.Trained(spec, steps: 3);
        using var trunk = ShardState.Export(trained.Trunk);
        using var all = ShardState.Export(trained.Towers);
        using var pending = store.Begin(spec, trained.StepCount, trunk.OptimizerStep);
        var ranges = ShardAssignment.Assign(spec.Shape.Groups, 3);   // [0,2) [2,4) [4,5)
        // Workers write their own files concurrently, as grains would, off the training thread, given only the ticket.
        var ticket = pending.Ticket;
        var shardFiles = new ShardFile[ranges.Count];
        Parallel.For(0, ranges.Count, w =>
        {
            using var part = CheckpointJobs.Slice(all, ranges[w]);
            shardFiles[w] = ticket.WriteTowers(part);
        });
        using (var retried = CheckpointJobs.Slice(all, ranges[1])) Assert.Equal(shardFiles[1], ticket.WriteTowers(retried));   // a retry is harmless
        pending.Commit(pending.WriteTrunk(trunk), shardFiles);

        using var middle = store.Open(spec.Name).CreateTowers(new GroupRange(1, 4), CPU);   // groups 1..4 from all three files
        CheckpointJobs.AssertSameTowers(trained.Towers, middle);
    }

    [Fact]
    public void An_export_is_a_copy_that_training_does_not_change()
    {
        using var scope = NewDisposeScope();
        using var trainer = CheckpointJobs.Trained(CheckpointJobs.Small(check), steps: 2);
        using var state = ShardState.Export(trainer.Towers);
        var before = state.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        trainer.Step();
        Assert.All(state.Tensors, kv => Assert.True(Same(before[kv.Key], kv.Value), kv.Key));
        Assert.Equal(2, state.OptimizerStep);
        Assert.Throws<ArgumentException>(() => state.RestoreInto(trainer.Trunk));
    }

    [Fact]
    public void States_go_only_where_they_fit()
    {
        using var scope = NewDisposeScope();
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        CheckpointJobs.SaveAfter(store, spec, steps: 1, shards: 2);
        var checkpoint = store.Open(spec.Name);
        using var state = checkpoint.ReadTowers(new GroupRange(0, 2));
        using var other = new TowerShard(spec.Shape, new GroupRange(1, 2), spec.Seed, ScalarType.Float64, CPU, spec.Optimizer);
        Assert.Contains("not towers [1, 3)", Assert.Throws<ArgumentException>(() => state.RestoreInto(other)).Message);
        using var float32 = new TowerShard(spec.Shape, new GroupRange(0, 2), spec.Seed, ScalarType.Float32, CPU, spec.Optimizer);
        Assert.Contains("Float32", Assert.Throws<ArgumentException>(() => state.RestoreInto(float32)).Message);
        using var frozen = new TowerShard(spec.Shape, new GroupRange(0, 2), spec.Seed, ScalarType.Float64, CPU, optimizer: null);
        Assert.Throws<InvalidOperationException>(() => ShardState.Export(frozen));
        Assert.Throws<ArgumentOutOfRangeException>(() => checkpoint.ReadTowers(new GroupRange(3, 3)));
    }

    [Fact]
    public void The_schedule_saves_every_K_steps_and_on_request_and_pruning_keeps_the_newest()
    {
        var spec = CheckpointJobs.Small(check);
        var store = new CheckpointStore(scratch.Root);
        var schedule = new CheckpointSchedule(everySteps: 3);
        using var trainer = new InProcessTrainer(spec);
        for (int i = 0; i < 10; i++)
        {
            trainer.Step();
            if (i == 3) schedule.Request();   // after step 4, on demand, between steps, e.g. from a grain call
            if (schedule.IsDue(trainer.StepCount)) trainer.SaveCheckpoint(store);
        }
        Assert.Equal([3, 4, 6, 9], store.List(spec.Name));
        Assert.Equal(9, store.LatestStep(spec.Name));
        Assert.Equal([3, 4], store.Prune(spec.Name, keep: 2));
        Assert.Equal([6, 9], store.List(spec.Name));
        using var resumed = InProcessTrainer.Resume(store, spec.Name, step: 6);
        Assert.Equal(6, resumed.StepCount);
    }
}
