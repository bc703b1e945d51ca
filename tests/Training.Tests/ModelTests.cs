using Orchestrator.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

/// <summary>Trunk, towers and AdamW against TorchSharp autograd and torch.optim.AdamW.</summary>
public class ModelTests
{
    static readonly OptimizerSpec Settings = new() { LearningRate = 0.05, Beta1 = 0.8, Beta2 = 0.95, Eps = 1e-6, WeightDecay = 0.1 };

    static optim.Optimizer TorchAdamW(params Parameter[] parameters) =>
        optim.AdamW(parameters, Settings.LearningRate, Settings.Beta1, Settings.Beta2, Settings.Eps, Settings.WeightDecay);

    [Fact]
    public void AdamW_matches_torch_optim_AdamW_over_several_steps()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var ours = check.Randn([5, 7], ScalarType.Float64);
        var theirs = new Parameter(ours.clone());
        using var weight = new MasterWeight(ours, ScalarType.Float64);
        using var adam = new AdamW(Settings, weight);
        var reference = TorchAdamW(theirs);
        for (int step = 0; step < 6; step++)
        {
            var grad = check.Randn([5, 7], ScalarType.Float64);
            adam.Step(grad);
            theirs.grad = grad.clone();
            reference.step();
        }
        check.Close(ours, theirs, 1e-12, "parameters after 6 AdamW steps");
        Assert.Equal(6, adam.StepCount);
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void AdamW_on_half_precision_updates_a_float32_master_and_rounds_it_into_the_working_copy(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var initial = check.Randn([4, 6], ScalarType.Float32, 0.03);
        using var mixed = new MasterWeight(initial.clone(), dtype);
        using var single = new MasterWeight(initial.clone(), ScalarType.Float32);
        // lr 1e-4: each update is below half an ulp of a bf16 weight of ~0.03, so a half-precision parameter would not move.
        var settings = Settings with { LearningRate = 1e-4, Eps = 1e-8 };
        using var mixedAdam = new AdamW(settings, mixed);
        using var singleAdam = new AdamW(settings, single);
        for (int step = 0; step < 3; step++)
        {
            var grad = check.Randn([4, 6], ScalarType.Float32, 1e-4).to(dtype);   // tiny: g² underflows in half precision
            mixedAdam.Step(grad);
            singleAdam.Step(grad.to(ScalarType.Float32));
        }
        Assert.Equal((ScalarType.Float32, dtype, ScalarType.Float32), (mixed.Master.dtype, mixed.Working.dtype, mixedAdam.ExpAvgSq[0].dtype));
        Assert.True(Same(single.Master, mixed.Master), "the master follows float32 AdamW exactly");
        Assert.True(Same(mixed.Master.to(dtype), mixed.Working), "the working copy is the rounded master");
        Assert.False(Same(initial, mixed.Master), "the small updates were kept");
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void Trunk_forward_backward_and_step_match_autograd(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var shape = new ModelShape { Groups = 3, Features = 6, Input = 4 };
        using var trunk = new Trunk(shape, check.Seed, dtype, CPU, Settings);
        var w = new Parameter(trunk.Weight.clone());
        var b = new Parameter(trunk.Bias.clone());
        var reference = TorchAdamW(w, b);

        var features = check.Randn([9, 6], dtype);
        var dX = check.Randn([9, 3, 4], dtype);
        var x = trunk.Forward(features);
        var expected = nn.functional.silu(features.matmul(w) + b).view(9, 3, 4);
        check.Close(x, expected, tolerance, "trunk forward");
        (expected * dX).sum().backward();
        reference.step();
        trunk.Backward(dX);
        check.Close(trunk.Weight, w, tolerance, "trunk weight after a step");
        check.Close(trunk.Bias, b, tolerance, "trunk bias after a step");
    }

    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 1e-4)]
    public void Tower_shard_matches_the_loop_reference_with_torch_AdamW(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var shape = new ModelShape { Groups = 5, Input = 6, Hidden = 8, Output = 3 };
        using var shard = new TowerShard(shape, new GroupRange(1, 3), check.Seed, dtype, CPU, Settings);
        var wGateUp = new Parameter(shard.WGateUp.clone());
        var wDown = new Parameter(shard.WDown.clone());
        var reference = TorchAdamW(wGateUp, wDown);

        var x = check.Randn([7, 3, 6], dtype, requiresGrad: true);
        var dY = check.Randn([7, 3, 3], dtype);
        var expected = LoopReference.SwiGluMlp(x, wGateUp, wDown);
        (expected * dY).sum().backward();
        reference.step();

        using var noGrad = no_grad();
        var y = shard.Forward(x.detach());
        var dX = shard.Backward(dY);
        check.Close(y, expected, tolerance, "tower forward");
        check.Close(dX, x.grad!, tolerance, "tower dX");
        check.Close(shard.WGateUp, wGateUp, tolerance, "w_gate_up after a step");
        check.Close(shard.WDown, wDown, tolerance, "w_down after a step");
    }

    [Fact]
    public void A_deferred_update_lands_at_the_next_forward_and_a_discarded_one_never()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var shape = new ModelShape { Groups = 3, Features = 4, Input = 5, Hidden = 6, Output = 2 };
        using var eager = new TowerShard(shape, new GroupRange(0, 3), seed: 7, ScalarType.Float64, CPU, Settings);
        using var deferred = new TowerShard(shape, new GroupRange(0, 3), seed: 7, ScalarType.Float64, CPU, Settings);
        for (int step = 0; step < 3; step++)
        {
            var x = check.Randn([8, 3, 5], ScalarType.Float64);
            var dY = check.Randn([8, 3, 2], ScalarType.Float64);
            Assert.True(Same(eager.Forward(x), deferred.Forward(x)), $"step {step}: forward after the deferred update");
            var dX = eager.Backward(dY);
            var before = deferred.WGateUp.clone();
            Assert.True(Same(dX, deferred.BackwardDeferred(dY)), $"step {step}: dX");
            Assert.True(Same(before, deferred.WGateUp), $"step {step}: the deferred update waits");
        }
        deferred.ApplyPending();
        Assert.True(Same(eager.WGateUp, deferred.WGateUp) && Same(eager.WDown, deferred.WDown));
        Assert.Equal(eager.Optimizer!.StepCount, deferred.Optimizer!.StepCount);

        // A rejected step: the gradients are dropped, the weights and the optimizer stay where they were.
        var kept = deferred.WDown.clone();
        deferred.Forward(check.Randn([8, 3, 5], ScalarType.Float64));
        deferred.BackwardDeferred(check.Randn([8, 3, 2], ScalarType.Float64));
        deferred.Discard();
        deferred.ApplyPending();
        Assert.True(Same(kept, deferred.WDown));
        Assert.Equal(3, deferred.Optimizer.StepCount);
    }

    [Fact]
    public void Group_weights_do_not_depend_on_the_shard_boundaries()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var shape = new ModelShape { Groups = 8, Input = 5, Hidden = 3, Output = 2 };
        using var all = new TowerShard(shape, new GroupRange(0, 8), check.Seed, ScalarType.Float32, CPU, null);
        using var middle = new TowerShard(shape, new GroupRange(2, 3), check.Seed, ScalarType.Float32, CPU, null);
        Assert.True(Same(all.WGateUp.narrow(0, 2, 3), middle.WGateUp));
        Assert.True(Same(all.WDown.narrow(0, 2, 3), middle.WDown));
        using var other = new TowerShard(shape, new GroupRange(2, 3), check.Seed + 1L, ScalarType.Float32, CPU, null);
        Assert.False(Same(other.WGateUp, middle.WGateUp));
        Assert.False(Same(all.WGateUp[0], all.WGateUp[1]));
    }

    [Fact]
    public void Misuse_of_forward_and_backward_is_an_error()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var shape = new ModelShape { Groups = 2, Input = 3, Hidden = 4, Output = 2 };
        using var shard = new TowerShard(shape, new GroupRange(0, 2), check.Seed, ScalarType.Float64, CPU, Settings);
        Assert.Throws<InvalidOperationException>(() => shard.Backward(check.Randn([4, 2, 2], ScalarType.Float64)));
        shard.Forward(check.Randn([4, 2, 3], ScalarType.Float64));
        Assert.Throws<InvalidOperationException>(() => shard.Forward(check.Randn([4, 2, 3], ScalarType.Float64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TowerShard(shape, new GroupRange(1, 2), 0, ScalarType.Float64, CPU, null));
    }
}
