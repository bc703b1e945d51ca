using Orchestrator.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The grouped SwiGLU towers of the contiguous groups [First, First + Count), their AdamW state, and the
/// activations kept between Forward and Backward. One worker owns one shard; the single-process trainer owns
/// one shard of all N groups. Group g's weights come from (seed, g) alone, so any split trains the same model. The
/// weights are <see cref="MasterWeight"/>s: float32 masters for half-precision jobs, read by the GEMMs through working
/// copies in the job's dtype.
/// </summary>
public sealed class TowerShard : IDisposable
{
    public GroupRange Groups { get; }
    readonly MasterWeight gateUp;    // (count, D_in, 2H) = [gate | up]
    readonly MasterWeight down;      // (count, H, D_out)
    public AdamW? Optimizer { get; } // null for frozen towers (the synthetic teacher)
    SwiGluSaved? saved;
    readonly DeferredUpdate? pending; // gradients (dW_gate_up, dW_down) whose AdamW update has not been applied yet

    public TowerShard(ModelShape shape, GroupRange groups, long seed, ScalarType dtype, Device device, OptimizerSpec? optimizer)
    {
        if (groups.First < 0 || groups.Count < 1 || groups.End > shape.Groups)
            throw new ArgumentOutOfRangeException(nameof(groups), $"groups {groups} are not inside [0, {shape.Groups}).");
        Groups = groups;
        var stored = optimizer is null ? dtype : MasterWeight.MasterDType(dtype);   // frozen towers (the teacher) keep no masters
        gateUp = new MasterWeight(GroupInit.Stacked(seed, groups, ParameterNames.TowerGateUp, [shape.Input, 2L * shape.Hidden],
            1 / Math.Sqrt(shape.Input), stored, device).DetachFromDisposeScope(), dtype);
        down = new MasterWeight(GroupInit.Stacked(seed, groups, ParameterNames.TowerDown, [shape.Hidden, shape.Output],
            1 / Math.Sqrt(shape.Hidden), stored, device).DetachFromDisposeScope(), dtype);
        Optimizer = optimizer is null ? null : new AdamW(optimizer, gateUp, down);
        pending = Optimizer is null ? null : new DeferredUpdate(Optimizer);
    }

    /// <summary>The gate/up weights of record (the master): (count, D_in, 2H).</summary>
    public Tensor WGateUp => gateUp.Master;
    /// <summary>The down weights of record (the master): (count, H, D_out).</summary>
    public Tensor WDown => down.Master;
    /// <summary>Both weights, in the order of the optimizer's state.</summary>
    public IReadOnlyList<MasterWeight> Weights => [gateUp, down];

    /// <summary>
    /// x (B, count, D_in) -> y (B, count, D_out); keeps the activations for <see cref="Backward"/>. A deferred update
    /// (<see cref="BackwardDeferred"/>) lands first: calling Forward again accepts the step it belongs to.
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        if (saved is not null) throw new InvalidOperationException($"shard {Groups}: Forward called twice without Backward.");
        ApplyPending();
        using var scope = NewDisposeScope();
        var y = GroupedSwiGluMlp.Forward(x, gateUp.Working, down.Working, out var kept);
        kept.X.DetachFromDisposeScope(); kept.GateUp.DetachFromDisposeScope(); kept.Hidden.DetachFromDisposeScope();
        saved = kept;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Forward without keeping anything (no training), with the weights of the last accepted step.</summary>
    public Tensor Infer(Tensor x)
    {
        ApplyPending();
        using var scope = NewDisposeScope();
        return GroupedSwiGluMlp.Forward(x, gateUp.Working, down.Working).MoveToOuterDisposeScope();
    }

    /// <summary>dY (B, count, D_out) -> dX (B, count, D_in), after one AdamW step on this shard's weights.</summary>
    public Tensor Backward(Tensor dY)
    {
        var dX = BackwardDeferred(dY);
        ApplyPending();
        return dX;
    }

    /// <summary>
    /// dY (B, count, D_out) -> dX (B, count, D_in); the gradients wait in the shard and the weights stay as they are
    /// until <see cref="ApplyPending"/> (or the next <see cref="Forward"/>) applies the AdamW step, or
    /// <see cref="Discard"/> drops it. A worker computes its backward before the coordinator has read the step's loss,
    /// so that the read is off the critical path, and applies the update only once the step is known to be good.
    /// </summary>
    public Tensor BackwardDeferred(Tensor dY)
    {
        if (saved is null) throw new InvalidOperationException($"shard {Groups}: Backward called without Forward.");
        var update = pending ?? throw new InvalidOperationException($"shard {Groups} is frozen.");
        using var scope = NewDisposeScope();
        var grads = GroupedSwiGluMlp.Backward(saved, gateUp.Working, down.Working, dY);
        update.Hold(grads.DGateUp, grads.DDown);
        saved.Dispose();
        saved = null;
        return grads.DX.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Applies the AdamW step of the last <see cref="BackwardDeferred"/>, if one is waiting, its gradients scaled by
    /// <paramref name="scale"/> (the job's gradient clipping).
    /// </summary>
    public void ApplyPending(double scale = 1) => pending?.Apply(scale);

    /// <summary>The sum of squares of the waiting gradients (0 when none wait), for the job's global gradient norm.</summary>
    public double PendingSquaredNorm() => pending?.SquaredNorm() ?? 0;

    /// <summary>Drops what Forward kept and an update still waiting, for a rejected step: the weights stay as they are.</summary>
    public void Discard()
    {
        saved?.Dispose();
        saved = null;
        pending?.Drop();
    }

    public void Dispose()
    {
        gateUp.Dispose(); down.Dispose();
        saved?.Dispose();
        pending?.Dispose();
        Optimizer?.Dispose();
    }
}
