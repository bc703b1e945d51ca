using Orchestrator.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The grouped SwiGLU towers of the contiguous groups [First, First + Count), their AdamW state, and the
/// activations kept between Forward and Backward. One worker owns one shard; the single-process trainer owns
/// one shard of all N groups. Group g's weights come from (seed, g) alone, so any split trains the same model.
/// </summary>
public sealed class TowerShard : IDisposable
{
    public GroupRange Groups { get; }
    public Tensor WGateUp { get; }   // (count, D_in, 2H) = [gate | up]
    public Tensor WDown { get; }     // (count, H, D_out)
    public AdamW? Optimizer { get; } // null for frozen towers (the synthetic teacher)
    SwiGluSaved? saved;

    public TowerShard(ModelShape shape, GroupRange groups, long seed, ScalarType dtype, Device device, OptimizerSpec? optimizer)
    {
        if (groups.First < 0 || groups.Count < 1 || groups.End > shape.Groups)
            throw new ArgumentOutOfRangeException(nameof(groups), $"groups {groups} are not inside [0, {shape.Groups}).");
        Groups = groups;
        WGateUp = GroupInit.Stacked(seed, groups, ParameterNames.TowerGateUp, [shape.Input, 2L * shape.Hidden],
            1 / Math.Sqrt(shape.Input), dtype, device).DetachFromDisposeScope();
        WDown = GroupInit.Stacked(seed, groups, ParameterNames.TowerDown, [shape.Hidden, shape.Output],
            1 / Math.Sqrt(shape.Hidden), dtype, device).DetachFromDisposeScope();
        Optimizer = optimizer is null ? null : new AdamW(optimizer, WGateUp, WDown);
    }

    /// <summary>x (B, count, D_in) -> y (B, count, D_out); keeps the activations for <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor x)
    {
        if (saved is not null) throw new InvalidOperationException($"shard {Groups}: Forward called twice without Backward.");
        using var scope = NewDisposeScope();
        var y = GroupedSwiGluMlp.Forward(x, WGateUp, WDown, out var kept);
        kept.X.DetachFromDisposeScope(); kept.GateUp.DetachFromDisposeScope(); kept.Hidden.DetachFromDisposeScope();
        saved = kept;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Forward without keeping anything (no training).</summary>
    public Tensor Infer(Tensor x)
    {
        using var scope = NewDisposeScope();
        return GroupedSwiGluMlp.Forward(x, WGateUp, WDown).MoveToOuterDisposeScope();
    }

    /// <summary>dY (B, count, D_out) -> dX (B, count, D_in), after one AdamW step on this shard's weights.</summary>
    public Tensor Backward(Tensor dY)
    {
        if (saved is null) throw new InvalidOperationException($"shard {Groups}: Backward called without Forward.");
        if (Optimizer is null) throw new InvalidOperationException($"shard {Groups} is frozen.");
        using var scope = NewDisposeScope();
        var grads = GroupedSwiGluMlp.Backward(saved, WGateUp, WDown, dY);
        Optimizer.Step(grads.DGateUp, grads.DDown);
        saved.Dispose();
        saved = null;
        return grads.DX.MoveToOuterDisposeScope();
    }

    /// <summary>Drops what Forward kept, for a step that is rejected before its backward: the weights stay as they are.</summary>
    public void Discard()
    {
        saved?.Dispose();
        saved = null;
    }

    public void Dispose()
    {
        WGateUp.Dispose(); WDown.Dispose();
        saved?.Dispose();
        Optimizer?.Dispose();
    }
}
