using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

public class TrainerTests
{
    static JobSpec SmallJob(long seed, ScalarType dtype = ScalarType.Float64) => new()
    {
        Name = "small",
        Shape = new ModelShape { Groups = 5, Features = 6, Input = 4, Hidden = 8, Output = 3 },
        BatchSize = 16,
        DType = dtype,
        Seed = seed,
        Data = new DataSpec { DataSeed = seed + 1, TeacherSeed = seed + 2 },
    };

    [Fact]
    public void The_loss_falls_on_the_synthetic_teacher()
    {
        using var trainer = new InProcessTrainer(SmallJob(Random.Shared.Next()) with { BatchSize = 64, DType = ScalarType.Float32 });
        var losses = Enumerable.Range(0, 300).Select(_ => trainer.Step().Loss).ToArray();
        Assert.True(losses[^1] < losses[0] / 4, $"loss went from {losses[0]} to {losses[^1]}");
    }

    /// <summary>The distributed step, without Orleans: the same trunk, the towers split into shards, x sliced per shard.</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void Sharded_towers_train_exactly_like_one_shard(int shards)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var spec = SmallJob(check.Seed);
        using var reference = new InProcessTrainer(spec);
        using var source = BatchSources.Create(spec);
        using var trunk = new Trunk(spec.Shape, spec.Seed, ScalarType.Float64, CPU, spec.Optimizer);
        var towers = ShardAssignment.Assign(spec.Shape.Groups, shards)
            .Select(r => new TowerShard(spec.Shape, r, spec.Seed, ScalarType.Float64, CPU, spec.Optimizer)).ToList();
        for (int step = 0; step < 4; step++)
        {
            using var stepScope = NewDisposeScope();
            double expected = reference.Step().Loss;
            using var batch = source.Get(step);
            var x = trunk.Forward(batch.Features);
            var y = cat(towers.Select(t => t.Forward(x.narrow(1, t.Groups.First, t.Groups.Count).contiguous())).ToArray(), 1);
            var (loss, dY) = MseLoss.Compute(y, batch.Targets);
            trunk.Backward(cat(towers.Select(t => t.Backward(dY.narrow(1, t.Groups.First, t.Groups.Count))).ToArray(), 1));
            Assert.Equal(expected, loss, 1e-12);
        }
        check.Close(cat(towers.Select(t => t.WGateUp).ToArray()), reference.Towers.WGateUp, 1e-12, "w_gate_up");
        check.Close(cat(towers.Select(t => t.WDown).ToArray()), reference.Towers.WDown, 1e-12, "w_down");
        check.Close(trunk.Weight, reference.Trunk.Weight, 1e-12, "trunk weight");
        towers.ForEach(t => t.Dispose());
    }

    [Fact]
    public void A_step_queues_its_phases_in_order()
    {
        using var trainer = new InProcessTrainer(SmallJob(new Check().Seed));
        var seen = new List<StepPhase>();
        trainer.PhaseQueued = seen.Add;
        trainer.Step();
        trainer.Step();
        var once = Enum.GetValues<StepPhase>();
        Assert.Equal(once.Concat(once), seen);
    }

    [Theory]
    [InlineData("features")]
    [InlineData("targets")]
    [InlineData("loss")]
    [InlineData("huge-feature")]
    public void A_bad_batch_is_rejected_before_any_parameter_changes(string damage)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var spec = SmallJob(check.Seed) with { DType = ScalarType.Float32 };
        var features = check.Randn([spec.BatchSize, spec.Shape.Features], ScalarType.Float32);
        var targets = check.Randn([spec.BatchSize, spec.Shape.Groups, spec.Shape.Output], ScalarType.Float32);
        switch (damage)
        {
            case "features": features[3, 1] = tensor(float.NaN); break;
            case "targets": targets[0, 1, 0] = tensor(float.PositiveInfinity); break;
            case "huge-feature": features[1, 2] = tensor(1e38f); break;   // finite, but the trunk's products overflow float32
            default: targets[2, 2, 1] = tensor(3e38f); break;             // finite, but its squared error overflows float32
        }
        using var scratch = new ScratchDirectory();
        var path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = targets });
        using var trainer = new InProcessTrainer(spec with { Data = spec.Data with { Source = "safetensors", Path = path } });
        var before = trainer.Parameters();
        var e = Assert.Throws<BadBatchException>(() => trainer.Step());
        Assert.Contains("batch 0 is rejected", e.Message);
        Assert.Contains(damage switch
        {
            "loss" => "targets reach 3E+38, so large that products of them overflow float32",
            "huge-feature" => "features reach 1E+38, so large that products of them overflow float32",
            _ => $"its {damage} hold 1 NaN or infinite values",
        }, e.Message);
        Assert.Equal(0, trainer.StepCount);
        Assert.All(trainer.Parameters(), kv => Assert.True(Exactly.Same(before[kv.Key], kv.Value), kv.Key));
        Assert.Throws<BadBatchException>(() => trainer.Step());   // the rejected step left nothing behind
    }

    [Fact]
    public void Mse_loss_and_its_gradient_match_autograd()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var y = check.Randn([6, 3, 4], ScalarType.Float64, requiresGrad: true);
        var target = check.Randn([6, 3, 4], ScalarType.Float64);
        var expected = nn.functional.mse_loss(y, target);
        expected.backward();
        var (loss, dY) = MseLoss.Compute(y.detach(), target);
        Assert.Equal(expected.item<double>(), loss, 1e-14);
        check.Close(dY, y.grad!, 1e-14, "dY");
        Assert.Throws<ArgumentException>(() => MseLoss.Compute(y.detach(), target.narrow(0, 0, 5)));
    }
}
