using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// AdamW with decoupled weight decay, in place on plain tensors, with torch.optim.AdamW's formula:
///   p -= lr * wd * p
///   m  = b1 * m + (1 - b1) * g
///   v  = b2 * v + (1 - b2) * g²
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// The state (m, v, step count) is exposed so a checkpoint can save and restore it. For float16 and bfloat16
/// parameters the state and the update math are float32 (eps = 1e-8 and small squared gradients vanish in half
/// precision); only the result is rounded back into the parameter.
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly OptimizerSpec settings;
    readonly Tensor[] parameters;
    public IReadOnlyList<Tensor> ExpAvg { get; }     // m, one per parameter
    public IReadOnlyList<Tensor> ExpAvgSq { get; }   // v, one per parameter
    public long StepCount { get; private set; }

    public AdamW(OptimizerSpec settings, params Tensor[] parameters)
    {
        this.settings = settings;
        this.parameters = parameters;
        ExpAvg = parameters.Select(p => zeros_like(p, MomentDType(p.dtype)).DetachFromDisposeScope()).ToArray();
        ExpAvgSq = parameters.Select(p => zeros_like(p, MomentDType(p.dtype)).DetachFromDisposeScope()).ToArray();
    }

    /// <summary>One update; grads[i] is the gradient of parameters[i].</summary>
    public void Step(params Tensor[] grads)
    {
        if (grads.Length != parameters.Length)
            throw new ArgumentException($"AdamW has {parameters.Length} parameters but got {grads.Length} gradients.", nameof(grads));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        StepCount++;
        var (lr, b1, b2) = (settings.LearningRate, settings.Beta1, settings.Beta2);
        double biasCorrection1 = 1 - Math.Pow(b1, StepCount);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(b2, StepCount));
        for (int i = 0; i < parameters.Length; i++)
        {
            var (m, v) = (ExpAvg[i], ExpAvgSq[i]);
            var (p, g) = parameters[i].dtype == m.dtype ? (parameters[i], grads[i]) : (parameters[i].to(m.dtype), grads[i].to(m.dtype));
            p.mul_(1 - lr * settings.WeightDecay);
            m.mul_(b1).add_(g, 1 - b1);
            v.mul_(b2).addcmul_(g, g, 1 - b2);
            var denom = (v.sqrt() / biasCorrection2Sqrt).add_(settings.Eps);
            p.addcdiv_(m, denom, -lr / biasCorrection1);
            if (!ReferenceEquals(p, parameters[i])) parameters[i].copy_(p);
        }
    }

    /// <summary>Replaces the moments (copied, on the parameters' devices) and the step count with a saved state.</summary>
    public void LoadState(long stepCount, IReadOnlyList<Tensor> expAvg, IReadOnlyList<Tensor> expAvgSq)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        if (expAvg.Count != parameters.Length || expAvgSq.Count != parameters.Length)
            throw new ArgumentException($"AdamW has {parameters.Length} parameters but got {expAvg.Count} and {expAvgSq.Count} moments.");
        for (int i = 0; i < parameters.Length; i++)
            foreach (var moment in new[] { expAvg[i], expAvgSq[i] })
                if (moment.dtype != ExpAvg[i].dtype || !moment.shape.SequenceEqual(parameters[i].shape))
                    throw new ArgumentException($"moment {i} is {moment.dtype} ({string.Join(", ", moment.shape)}) but its parameter is " +
                                                $"{parameters[i].dtype} ({string.Join(", ", parameters[i].shape)}).");
        using var noGrad = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            ExpAvg[i].copy_(expAvg[i]);
            ExpAvgSq[i].copy_(expAvgSq[i]);
        }
        StepCount = stepCount;
    }

    /// <summary>The dtype the moments of a parameter of <paramref name="dtype"/> are kept in.</summary>
    public static ScalarType MomentDType(ScalarType dtype) => dtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : dtype;

    public void Dispose()
    {
        foreach (var t in ExpAvg.Concat(ExpAvgSq)) t.Dispose();
    }
}
