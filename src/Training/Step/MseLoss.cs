using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>Mean squared error over all elements: loss = mean((y - t)²), dY = 2 (y - t) / numel.</summary>
public static class MseLoss
{
    public static (double Loss, Tensor DY) Compute(Tensor y, Tensor target)
    {
        using var scope = NewDisposeScope();
        var (loss, dY) = Queue(y, target);
        return (loss.item<double>(), dY.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The loss as a float64 scalar tensor, not read yet (no device sync), and dY. On CUDA one fused pass reads y and the
    /// target once, writes dY once and sums the loss in float64; elsewhere the same formulas run as TorchSharp ops.
    /// </summary>
    public static (Tensor Loss, Tensor DY) Queue(Tensor y, Tensor target)
    {
        if (!y.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"output ({string.Join(", ", y.shape)}) and target ({string.Join(", ", target.shape)}) differ in shape.");
        using var scope = NewDisposeScope();
        if (FusedElementwise.Supports(y, target))
        {
            var sum = zeros([], ScalarType.Float64, y.device);
            var gradient = empty_like(y);
            FusedElementwise.MseLoss(y, target, gradient, sum);
            return (sum.MoveToOuterDisposeScope(), gradient.MoveToOuterDisposeScope());
        }
        var diff = y - target;
        var loss = diff.square().mean().to(ScalarType.Float64);
        var dY = diff.mul_(2.0 / y.numel());
        return (loss.MoveToOuterDisposeScope(), dY.MoveToOuterDisposeScope());
    }
}
