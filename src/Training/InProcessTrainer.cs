using Orchestrator.Kernels.Cuda;
using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The whole job in one process: the trunk and one tower shard holding all N groups. It is the reference the
/// distributed path must reproduce, and the simplest way to train on one device.
/// </summary>
public sealed partial class InProcessTrainer : IDisposable
{
    readonly JobSpec spec;
    readonly IBatchSource source;
    readonly Device device;
    /// <summary>On a GPU, marks where a step's verdict copy was queued (null on the CPU, where copies are synchronous).</summary>
    readonly StreamFence? fence;
    public Trunk Trunk { get; }
    public TowerShard Towers { get; }
    public long StepCount { get; private set; }
    /// <summary>Called as each phase of a step has been queued (a benchmark records a CUDA event there).</summary>
    public Action<StepPhase>? PhaseQueued { get; set; }

    public InProcessTrainer(JobSpec spec, Device? device = null)
    {
        this.spec = spec.Validate();
        this.device = device ?? CPU;
        var dtype = Kernels.DTypeNames.Parse(spec.DType);
        source = BatchSources.Create(spec, this.device);
        Trunk = new Trunk(spec.Shape, spec.Seed, dtype, this.device, spec.Optimizer);
        Towers = new TowerShard(spec.Shape, new GroupRange(0, spec.Shape.Groups), spec.Seed, dtype, this.device, spec.Optimizer);
        fence = this.device.type == DeviceType.CUDA ? new StreamFence(this.device.index) : null;
    }

    /// <summary>
    /// One step. The device work is queued end to end with one host synchronisation, the verdict read after the towers'
    /// backward is queued: a batch holding NaN or Inf, or a non-finite loss, is rejected (<see cref="BadBatchException"/>)
    /// before any parameter changes.
    /// </summary>
    public StepMetrics Step()
    {
        using var scope = NewDisposeScope();
        var timer = new PhaseTimer();
        using var batch = source.Get(StepCount);
        var features = batch.Features.to(device);                          // (B, D_feat)
        var targets = batch.Targets.to(device);                            // (B, N, D_out)
        double data = Queued(StepPhase.Data, timer);
        var x = Trunk.Forward(features);                                    // (B, N, D_in)
        double trunkForward = data + Queued(StepPhase.TrunkForward, timer);
        var y = Towers.Forward(x);                                          // (B, N, D_out)
        double towerForward = Queued(StepPhase.TowersForward, timer);
        var (lossTensor, dY) = MseLoss.Queue(y, targets);                  // (), (B, N, D_out)
        using var verdict = new StepVerdict(lossTensor, features, targets, fence);
        double lossMs = Queued(StepPhase.Loss, timer);
        var dX = Towers.BackwardDeferred(dY);                               // (B, N, D_in); the towers' AdamW step waits
        double towerBackward = Queued(StepPhase.TowersBackward, timer);

        var (loss, rejection) = verdict.Read(StepCount, spec);
        if (rejection is not null)
        {
            Towers.Discard();
            Trunk.Discard();
            throw new BadBatchException(rejection);
        }
        Trunk.Backward(dX);
        double trunkBackward = Queued(StepPhase.TrunkBackward, timer);
        Towers.ApplyPending();
        trunkBackward += Queued(StepPhase.TowersAdamW, timer);
        return new StepMetrics(StepCount++, loss, spec.BatchSize, trunkForward, towerForward, lossMs, towerBackward, trunkBackward, timer.TotalMs, DataMs: data);
    }

    double Queued(StepPhase phase, PhaseTimer timer)
    {
        PhaseQueued?.Invoke(phase);
        return timer.Lap();
    }

    /// <summary>Copies of every parameter of record (the masters) under its <see cref="ParameterNames"/> name; the caller owns them.</summary>
    public Dictionary<string, Tensor> Parameters() => new()
    {
        [ParameterNames.TrunkWeight] = Trunk.Weight.clone().DetachFromDisposeScope(),
        [ParameterNames.TrunkBias] = Trunk.Bias.clone().DetachFromDisposeScope(),
        [ParameterNames.TowerGateUp] = Towers.WGateUp.clone().DetachFromDisposeScope(),
        [ParameterNames.TowerDown] = Towers.WDown.clone().DetachFromDisposeScope(),
    };

    public void Dispose()
    {
        source.Dispose();
        Trunk.Dispose();
        Towers.Dispose();
        fence?.Dispose();
    }
}
