using Orchestrator.Kernels.Cuda;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The training step, written once for the single-process trainer and the coordinator grain:
///   1. batch i onto the trunk's device; trunk forward: x = silu(features @ W + b)      (B, N, D_in)
///   2. the towers' forward: y                                                          (B, N, D_out)
///   3. the loss (<see cref="JobLoss"/>) and dY; the verdict (loss, input checks) copied to the host unawaited
///   4. the towers' backward: dX, their AdamW update waiting                            (B, N, D_in)
///   5. read the verdict (the step's one host sync, with the backward already queued): the trunk's backward, or the
///      step rejected before any parameter changes
///   6. when the job clips: the global gradient norm, the trunk's and every shard's squares added up (rejected when
///      not finite), and the scale min(1, clip / norm)
///   7. the trunk's and the towers' AdamW updates applied, at the schedule's learning rate
/// The trunk-side work runs on <see cref="ITensorThread"/>; the towers are wherever <see cref="IStepTowers"/> puts them.
/// </summary>
public sealed class TrainingStep(JobSpec job, Trunk trunk, IBatchSource data, StreamFence? fence, ITensorThread thread) : IDisposable
{
    readonly JobLoss loss = new(job.Loss);
    bool Clips => job.Optimizer.ClipNorm > 0;

    /// <summary>Called on the trunk's thread as each phase has been queued (a benchmark records a CUDA event there).</summary>
    public Action<StepPhase>? PhaseQueued { get; set; }

    /// <summary>Runs step <paramref name="step"/>; throws <see cref="BadBatchException"/> with the model unchanged for a bad batch.</summary>
    public async Task<StepMetrics> RunAsync(long step, IStepTowers towers)
    {
        var timer = new PhaseTimer();
        var kept = new List<Tensor>();   // the step's tensors, made and freed on the trunk's thread
        Tensor Keep(Tensor t)
        {
            kept.Add(t.DetachFromDisposeScope());
            return t;
        }
        StepVerdict? verdict = null;
        void Release()
        {
            kept.ForEach(t => t.Dispose());
            kept.Clear();
            trunk.Update.Drop();   // still waiting only when the step failed after the trunk's backward
            verdict?.Dispose();
            verdict = null;
        }
        try
        {
            var (features, targets, x, dataMs, trunkForwardMs) = await thread.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                using var batch = data.Get(step);
                var device = trunk.Weight.device;
                var features = Keep(batch.Features.to(device).alias());               // (B, D_feat)
                var targets = Keep(batch.Targets.to(device).alias());                 // (B, N, D_out)
                double dataMs = Queued(StepPhase.Data, timer);
                var x = Keep(trunk.Forward(features));                                // (B, N, D_in)
                return (features, targets, x, dataMs, dataMs + Queued(StepPhase.TrunkForward, timer));
            });

            var y = Keep(await towers.ForwardAsync(x));                                 // (B, N, D_out)

            var (dY, towerForwardMs, lossMs) = await thread.RunAsync(() =>
            {
                double towerForwardMs = Queued(StepPhase.TowersForward, timer);
                using var scope = NewDisposeScope();
                var (value, gradient) = loss.Queue(y, targets);                         // (), (B, N, D_out)
                verdict = new StepVerdict(value, features, targets, fence, targetsAreProbabilities: loss.Kind == LossKind.Bce);
                return (Keep(gradient), towerForwardMs, Queued(StepPhase.Loss, timer));
            });

            var dX = Keep(await towers.BackwardAsync(dY));                              // (B, N, D_in)

            var (lossValue, rejection, towerBackwardMs, trunkBackwardMs, trunkSquares, learningRate) = await thread.RunAsync(() =>
            {
                double towerBackwardMs = Queued(StepPhase.TowersBackward, timer);
                var (loss, rejection) = verdict!.Read(step, job, features, targets);
                double learningRate = trunk.Optimizer!.LearningRate;
                if (rejection is not null)
                {
                    trunk.Discard();
                    return (loss, rejection, towerBackwardMs, 0.0, 0.0, learningRate);
                }
                trunk.BackwardDeferred(dX);
                double squares = Clips ? trunk.Update.SquaredNorm() : 0;
                if (!Clips) trunk.Update.Apply();
                return (loss, rejection, towerBackwardMs, Queued(StepPhase.TrunkBackward, timer), squares, learningRate);
            });
            if (rejection is not null)
            {
                await towers.DiscardAsync();
                throw new BadBatchException(rejection);
            }
            var (scale, gradientNorm) = Clips ? await ClipAsync(step, trunkSquares, towers) : (1.0, (double?)null);
            await towers.AcceptAsync(scale);
            trunkBackwardMs += await thread.RunAsync(() =>
            {
                if (Clips) trunk.Update.Apply(scale);
                double adamWMs = Queued(StepPhase.TowersAdamW, timer);
                Release();
                return adamWMs;
            });
            return new StepMetrics(step, lossValue, job.BatchSize, trunkForwardMs, towerForwardMs, lossMs, towerBackwardMs, trunkBackwardMs,
                timer.TotalMs, DataMs: dataMs, LearningRate: learningRate, GradientNorm: gradientNorm);
        }
        finally
        {
            if (kept.Count > 0 || verdict is not null) await thread.RunAsync(() => { Release(); return true; });
        }
    }

    /// <summary>
    /// The global gradient norm (the trunk's squares and every shard's) and the clipping scale; a norm that is not finite
    /// rejects the step with every update dropped.
    /// </summary>
    async Task<(double Scale, double? Norm)> ClipAsync(long step, double trunkSquares, IStepTowers towers)
    {
        double norm = Math.Sqrt(trunkSquares + await towers.PendingSquaredNormAsync());
        if (double.IsFinite(norm)) return (GradientClipping.Scale(job.Optimizer.ClipNorm, norm), norm);
        await thread.RunAsync(() => { trunk.Update.Drop(); return true; });
        await towers.DiscardAsync();
        throw new BadBatchException($"batch {step} is rejected: its gradient norm is {norm} (the loss was finite); try a smaller learning rate " +
                                    $"than {job.Optimizer.LearningRate} or a wider dtype than {Kernels.DTypeNames.Name(job.DType)}. The model is unchanged.");
    }

    public void Dispose() => loss.Dispose();

    double Queued(StepPhase phase, PhaseTimer timer)
    {
        PhaseQueued?.Invoke(phase);
        return timer.Lap();
    }
}
