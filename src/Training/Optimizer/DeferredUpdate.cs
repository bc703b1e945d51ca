using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// A step's gradients held until the step is known to be good: then applied by AdamW (scaled first when the job clips
/// them), or dropped for a rejected step. The trunk and every tower shard hold their gradients so, which lets the
/// coordinator read the step's loss, and add up the global gradient norm, before any weight changes.
/// </summary>
public sealed class DeferredUpdate(AdamW optimizer) : IDisposable
{
    Tensor[]? gradients;   // one per parameter of the optimizer, in its working dtype

    public bool IsWaiting => gradients is not null;

    /// <summary>Takes ownership of the step's gradients; an update still waiting is an error (the step before was neither accepted nor dropped).</summary>
    public void Hold(params Tensor[] grads)
    {
        if (gradients is not null) throw new InvalidOperationException("a gradient update is already waiting; apply or drop it first.");
        gradients = grads.Select(g => g.DetachFromDisposeScope()).ToArray();
    }

    /// <summary>The sum of the squares of every waiting gradient element (float64; one host sync), 0 when none waits.</summary>
    public double SquaredNorm()
    {
        if (gradients is null) return 0;
        using var scope = NewDisposeScope();
        // Half-precision squares overflow float16 above 256: square in float32 at least, add up in float64.
        var total = gradients.Select(g => (g.element_size() < 4 ? g.to(ScalarType.Float32) : g).square().sum(ScalarType.Float64))
            .Aggregate((a, b) => a + b);
        return total.item<double>();
    }

    /// <summary>Applies the waiting update, its gradients scaled by <paramref name="scale"/> (gradient clipping), if one waits.</summary>
    public void Apply(double scale = 1)
    {
        if (gradients is null) return;
        if (scale != 1)
        {
            using var factor = (Scalar)scale;
            foreach (var g in gradients) g.mul_(factor);
        }
        optimizer.Step(gradients);
        Drop();
    }

    public void Drop()
    {
        foreach (var g in gradients ?? []) g.Dispose();
        gradients = null;
    }

    public void Dispose() => Drop();
}
