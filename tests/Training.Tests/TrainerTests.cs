using Orchestrator.Kernels.Tests;
using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

public class TrainerTests
{
    static JobSpec SmallJob(long seed, string dtype = "float64") => new()
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
        using var trainer = new InProcessTrainer(SmallJob(Random.Shared.Next()) with { BatchSize = 64, DType = "float32" });
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
