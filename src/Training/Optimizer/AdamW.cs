using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// AdamW with decoupled weight decay, in place on the masters of <see cref="MasterWeight"/>s, with torch.optim.AdamW's
/// formula:
///   p -= lr * wd * p
///   m  = b1 * m + (1 - b1) * g
///   v  = b2 * v + (1 - b2) * g²
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// The moments have the masters' dtype (float32 for half-precision jobs). On CUDA with float32 masters one fused kernel
/// updates every parameter and its working copy in a single pass (<see cref="FusedAdamW"/>); elsewhere (the CPU, float64)
/// the same formula runs as TorchSharp ops, and the working copies are refreshed after. The state (m, v, step count) is
/// exposed so a checkpoint can save and restore it.
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly OptimizerSpec settings;
    readonly MasterWeight[] weights;
    public IReadOnlyList<Tensor> ExpAvg { get; }     // m, one per parameter
    public IReadOnlyList<Tensor> ExpAvgSq { get; }   // v, one per parameter
    public long StepCount { get; private set; }
    /// <summary>The learning rate of the next update (<see cref="LearningRateSchedule"/> at step StepCount + 1).</summary>
    public double LearningRate => LearningRateSchedule.At(settings, StepCount + 1);
    /// <summary>Whether CUDA float32 masters take the fused kernel; false keeps the TorchSharp ops (a benchmark's baseline).</summary>
    public bool AllowFused { get; init; } = true;

    public AdamW(OptimizerSpec settings, params MasterWeight[] weights)
    {
        this.settings = settings;
        this.weights = weights;
        ExpAvg = weights.Select(w => zeros_like(w.Master).DetachFromDisposeScope()).ToArray();
        ExpAvgSq = weights.Select(w => zeros_like(w.Master).DetachFromDisposeScope()).ToArray();
    }

    /// <summary>One update; grads[i] is the gradient of parameter i, in its working dtype.</summary>
    public void Step(params Tensor[] grads)
    {
        if (grads.Length != weights.Length)
            throw new ArgumentException($"AdamW has {weights.Length} parameters but got {grads.Length} gradients.", nameof(grads));
        for (int i = 0; i < weights.Length; i++)
            if (!grads[i].shape.SequenceEqual(weights[i].Master.shape))
                throw new ArgumentException($"gradient {i} is ({string.Join(", ", grads[i].shape)}) but its parameter is " +
                                            $"({string.Join(", ", weights[i].Master.shape)}).", nameof(grads));
        double lr = LearningRate;   // the schedule's for this update, step StepCount + 1
        StepCount++;
        var (b1, b2) = (settings.Beta1, settings.Beta2);
        double stepSize = lr / (1 - Math.Pow(b1, StepCount));
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(b2, StepCount));
        var fused = weights.Select((w, i) => new AdamWTensor(w.Master, ExpAvg[i], ExpAvgSq[i], grads[i], w.HasWorkingCopy ? w.Working : null)).ToArray();
        if (AllowFused && FusedAdamW.Supports(fused))
        {
            FusedAdamW.Step(fused, new AdamWScalars((float)(1 - lr * settings.WeightDecay), (float)b1, (float)(1 - b1), (float)b2, (float)(1 - b2),
                (float)settings.Eps, (float)stepSize, (float)biasCorrection2Sqrt));
            return;
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Scalars held for the whole update: a temporary made by an implicit conversion can be finalized while the
        // native call still reads it, which surfaced as a rare "toFloat" check failure under a loaded test run.
        using Scalar decay = 1 - lr * settings.WeightDecay, beta1 = b1, oneMinusBeta1 = 1 - b1, beta2 = b2, oneMinusBeta2 = 1 - b2,
            correction2 = biasCorrection2Sqrt, eps = settings.Eps, step = -stepSize;
        for (int i = 0; i < weights.Length; i++)
        {
            var (p, m, v) = (weights[i].Master, ExpAvg[i], ExpAvgSq[i]);
            var g = grads[i].dtype == p.dtype ? grads[i] : grads[i].to(p.dtype);
            p.mul_(decay);
            m.mul_(beta1).add_(g, oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, oneMinusBeta2);
            var denom = v.sqrt().div_(correction2).add_(eps);
            p.addcdiv_(m, denom, step);
            weights[i].Refresh();
        }
    }

    /// <summary>Replaces the moments (copied, on the parameters' devices) and the step count with a saved state.</summary>
    public void LoadState(long stepCount, IReadOnlyList<Tensor> expAvg, IReadOnlyList<Tensor> expAvgSq)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        if (expAvg.Count != weights.Length || expAvgSq.Count != weights.Length)
            throw new ArgumentException($"AdamW has {weights.Length} parameters but got {expAvg.Count} and {expAvgSq.Count} moments.");
        for (int i = 0; i < weights.Length; i++)
            foreach (var moment in new[] { expAvg[i], expAvgSq[i] })
                if (moment.dtype != ExpAvg[i].dtype || !moment.shape.SequenceEqual(ExpAvg[i].shape))
                    throw new ArgumentException($"moment {i} is {moment.dtype} ({string.Join(", ", moment.shape)}) but its parameter's are " +
                                                $"{ExpAvg[i].dtype} ({string.Join(", ", ExpAvg[i].shape)}).");
        using var noGrad = no_grad();
        for (int i = 0; i < weights.Length; i++)
        {
            ExpAvg[i].copy_(expAvg[i]);
            ExpAvgSq[i].copy_(expAvgSq[i]);
        }
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var t in ExpAvg.Concat(ExpAvgSq)) t.Dispose();
    }
}
