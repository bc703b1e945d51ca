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
    public Trunk Trunk { get; }
    public TowerShard Towers { get; }
    public long StepCount { get; private set; }

    public InProcessTrainer(JobSpec spec, Device? device = null)
    {
        this.spec = spec.Validate();
        device ??= CPU;
        var dtype = Kernels.DTypeNames.Parse(spec.DType);
        source = BatchSources.Create(spec, device);
        Trunk = new Trunk(spec.Shape, spec.Seed, dtype, device, spec.Optimizer);
        Towers = new TowerShard(spec.Shape, new GroupRange(0, spec.Shape.Groups), spec.Seed, dtype, device, spec.Optimizer);
    }

    public StepMetrics Step()
    {
        using var scope = NewDisposeScope();
        var timer = new PhaseTimer();
        using var batch = source.Get(StepCount);
        var features = batch.Features.to(Trunk.Weight.device);             // (B, D_feat)
        double data = timer.Lap();
        var x = Trunk.Forward(features);                                    // (B, N, D_in)
        double trunkForward = data + timer.Lap();
        var y = Towers.Forward(x);                                          // (B, N, D_out)
        double towerForward = timer.Lap();
        var (loss, dY) = MseLoss.Compute(y, batch.Targets.to(y.device));
        double lossMs = timer.Lap();
        var dX = Towers.Backward(dY);                                       // (B, N, D_in)
        double towerBackward = timer.Lap();
        Trunk.Backward(dX);
        double trunkBackward = timer.Lap();
        return new StepMetrics(StepCount++, loss, spec.BatchSize, trunkForward, towerForward, lossMs, towerBackward, trunkBackward, timer.TotalMs, DataMs: data);
    }

    /// <summary>Copies of every parameter under its <see cref="ParameterNames"/> name; the caller owns them.</summary>
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
    }
}
