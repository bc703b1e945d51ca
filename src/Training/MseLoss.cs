using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>Mean squared error over all elements: loss = mean((y - t)²), dY = 2 (y - t) / numel.</summary>
public static class MseLoss
{
    public static (double Loss, Tensor DY) Compute(Tensor y, Tensor target)
    {
        if (!y.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"output ({string.Join(", ", y.shape)}) and target ({string.Join(", ", target.shape)}) differ in shape.");
        using var scope = NewDisposeScope();
        var diff = y - target;
        double loss = diff.square().mean().to(ScalarType.Float64).item<double>();
        var dY = diff.mul_(2.0 / y.numel());
        return (loss, dY.MoveToOuterDisposeScope());
    }
}
