using Orchestrator.Kernels.Cuda;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The training step, written once for the single-process trainer and the coordinator grain:
///   1. batch i onto the trunk's device; trunk forward: x = silu(features @ W + b)      (B, N, D_in)
///   2. the towers' forward: y                                                          (B, N, D_out)
///   3. MSE loss and dY = 2 (y - target) / numel; the verdict (loss, input checks) copied to the host unawaited
///   4. the towers' backward: dX, their AdamW update waiting                            (B, N, D_in)
///   5. read the verdict (the step's one host sync, with the backward already queued): trunk backward + AdamW and the
///      towers' update accepted, or the step rejected before any parameter changes
/// The trunk-side work runs on <see cref="ITensorThread"/>; the towers are wherever <see cref="IStepTowers"/> puts them.
/// </summary>
public sealed class TrainingStep(JobSpec job, Trunk trunk, IBatchSource data, StreamFence? fence, ITensorThread thread)
{
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
                var (loss, gradient) = MseLoss.Queue(y, targets);                       // (), (B, N, D_out)
                verdict = new StepVerdict(loss, features, targets, fence);
                return (Keep(gradient), towerForwardMs, Queued(StepPhase.Loss, timer));
            });

            var dX = Keep(await towers.BackwardAsync(dY));                              // (B, N, D_in)

            var (lossValue, rejection, towerBackwardMs, trunkBackwardMs) = await thread.RunAsync(() =>
            {
                double towerBackwardMs = Queued(StepPhase.TowersBackward, timer);
                var (loss, rejection) = verdict!.Read(step, job, features, targets);
                if (rejection is null) trunk.Backward(dX);
                else trunk.Discard();
                return (loss, rejection, towerBackwardMs, rejection is null ? Queued(StepPhase.TrunkBackward, timer) : 0);
            });
            if (rejection is not null)
            {
                await towers.DiscardAsync();
                throw new BadBatchException(rejection);
            }
            await towers.AcceptAsync();
            trunkBackwardMs += await thread.RunAsync(() =>
            {
                double adamWMs = Queued(StepPhase.TowersAdamW, timer);
                Release();
                return adamWMs;
            });
            return new StepMetrics(step, lossValue, job.BatchSize, trunkForwardMs, towerForwardMs, lossMs, towerBackwardMs, trunkBackwardMs,
                timer.TotalMs, DataMs: dataMs);
        }
        finally
        {
            if (kept.Count > 0 || verdict is not null) await thread.RunAsync(() => { Release(); return true; });
        }
    }

    double Queued(StepPhase phase, PhaseTimer timer)
    {
        PhaseQueued?.Invoke(phase);
        return timer.Lap();
    }
}
