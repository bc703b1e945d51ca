using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The job's loss (<see cref="LossSpec"/>) over y and the targets (B, N, D_out):
///   per element  mse: (y - t)²                         bce: max(y, 0) - y t + log(1 + exp(-|y|))   (y: logits, t in [0, 1])
///   L_g          the mean of group g's elements over (B, D_out)
///   loss         (1/N) sum_g w_g L_g                   (w: Loss.GroupWeights, all 1 when empty: the mean over all elements)
///   dY           w_g / (B N D_out) * (mse: 2 (y - t);  bce: sigmoid(y) - t)
/// Unweighted MSE on a GPU takes the fused one-pass kernel (<see cref="MseLoss"/>); the rest runs as TorchSharp ops.
/// </summary>
public sealed class JobLoss(LossSpec spec) : IDisposable
{
    public LossKind Kind => spec.Kind;
    /// <summary>The group weights as (1, N, 1) by device and dtype, made once: a host-to-device copy every step would sync the host.</summary>
    readonly Dictionary<(string Device, ScalarType DType), Tensor> weights = [];

    /// <summary>The loss as a float64 scalar tensor, not read yet (no device sync), and dY (B, N, D_out).</summary>
    public (Tensor Loss, Tensor DY) Queue(Tensor y, Tensor target)
    {
        if (spec is { Kind: LossKind.Mse, GroupWeights.Count: 0 }) return MseLoss.Queue(y, target);
        if (!y.shape.SequenceEqual(target.shape))
            throw new ArgumentException($"output ({string.Join(", ", y.shape)}) and target ({string.Join(", ", target.shape)}) differ in shape.");
        using var scope = NewDisposeScope();
        var perGroup = GroupMeans(y, target);                                  // (N) float64
        // Half precision computes dY in float32 and rounds it once: w / n is small (n = B N D_out), so rounding the
        // difference, the division and the weight apart would put three roundings into float16's subnormal range.
        var (yy, tt) = y.element_size() < 4 ? (y.to(ScalarType.Float32), target.to(ScalarType.Float32)) : (y, target);
        var gradient = spec.Kind == LossKind.Mse ? (yy - tt).mul_(2.0) : sigmoid(yy).sub_(tt);
        gradient.div_(y.numel());
        var loss = perGroup.mean();
        if (spec.GroupWeights.Count > 0)
        {
            gradient.mul_(Weights(y.device, gradient.dtype));
            loss = (perGroup * Weights(y.device, ScalarType.Float64).flatten()).mean();
        }
        return (loss.MoveToOuterDisposeScope(), gradient.to(y.dtype).MoveToOuterDisposeScope());
    }

    /// <summary>The job's loss, (1/N) sum_g w_g L_g, from the groups' mean losses L_g read to the host (evaluation).</summary>
    public double Weighted(IReadOnlyList<double> groupMeans) =>
        groupMeans.Select((mean, g) => mean * (spec.GroupWeights.Count > 0 ? spec.GroupWeights[g] : 1)).Sum() / groupMeans.Count;

    /// <summary>L_g, each group's mean per-element loss over (B, D_out), unweighted: (N) float64 (evaluation reports it per group).</summary>
    public Tensor GroupMeans(Tensor y, Tensor target)
    {
        using var scope = NewDisposeScope();
        var elements = spec.Kind == LossKind.Mse
            ? (y - target).square()
            : y.clamp_min(0).sub_(y * target).add_(y.abs().neg_().exp_().log1p_());
        return elements.sum([0, 2], type: ScalarType.Float64).div_(y.shape[0] * y.shape[2]).MoveToOuterDisposeScope();
    }

    Tensor Weights(Device device, ScalarType dtype)
    {
        if (!weights.TryGetValue((device.ToString(), dtype), out var w))
        {
            using var scope = NewDisposeScope();
            w = tensor(spec.GroupWeights.ToArray(), ScalarType.Float64).to(dtype, device).view(1, -1, 1).DetachFromDisposeScope();
            weights[(device.ToString(), dtype)] = w;
        }
        return w;
    }

    public void Dispose()
    {
        foreach (var w in weights.Values) w.Dispose();
        weights.Clear();
    }
}
