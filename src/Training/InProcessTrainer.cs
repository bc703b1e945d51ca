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
    public JobSpec Spec => spec;
    public Trunk Trunk { get; }
    public TowerShard Towers { get; }
    public long StepCount { get; private set; }
    readonly TrainingStep step;
    readonly LocalTowers towers;
    readonly HeldOutData? heldOut;
    readonly Evaluation? evaluation;
    /// <summary>The best validation loss so far (restored with a checkpoint), judging each evaluation.</summary>
    public EarlyStopping EarlyStopping { get; private set; }

    /// <summary>Called as each phase of a step has been queued (a benchmark records a CUDA event there).</summary>
    public Action<StepPhase>? PhaseQueued
    {
        get => step.PhaseQueued;
        set => step.PhaseQueued = value;
    }

    public InProcessTrainer(JobSpec spec, Device? device = null)
    {
        this.spec = spec.Validate();
        this.device = device ?? CPU;
        spec = this.spec;
        var dtype = spec.DType;
        source = BatchSources.Create(spec, this.device);
        Trunk = new Trunk(spec.Shape, spec.Seed, dtype, this.device, spec.Optimizer);
        Towers = new TowerShard(spec.Shape, new GroupRange(0, spec.Shape.Groups), spec.Seed, dtype, this.device, spec.Optimizer);
        fence = this.device.type == DeviceType.CUDA ? new StreamFence(this.device.index) : null;
        step = new TrainingStep(this.spec, Trunk, source, fence, CallingThread.Instance);
        towers = new LocalTowers(Towers);
        heldOut = BatchSources.HeldOut(spec, source);
        evaluation = heldOut is null ? null : new Evaluation(spec, Trunk, heldOut, CallingThread.Instance);
        EarlyStopping = new EarlyStopping(spec.Validation.EarlyStopPatience, restored: null);
    }

    /// <summary>
    /// One <see cref="TrainingStep"/> on this thread: the device work is queued end to end with one host
    /// synchronisation, and a batch holding NaN or Inf, or a non-finite loss, is rejected (<see cref="BadBatchException"/>)
    /// before any parameter changes.
    /// </summary>
    public StepMetrics Step()
    {
        using var scope = NewDisposeScope();
        // Every task of a step on the calling thread has completed when it is returned: nothing here waits on another thread.
        var metrics = step.RunAsync(StepCount, towers).GetAwaiter().GetResult();
        StepCount++;
        return spec.Validation.IsDue(StepCount, spec.Steps) ? metrics with { Eval = Evaluate() } : metrics;
    }

    /// <summary>
    /// The model after <see cref="StepCount"/> steps on the held-out data, judged by <see cref="EarlyStopping"/>; the
    /// job must have validation data.
    /// </summary>
    public EvalMetrics Evaluate()
    {
        var run = evaluation ?? throw new InvalidOperationException($"job '{spec.Name}' has no held-out data (Validation.Fraction or Validation.Path).");
        using var scope = NewDisposeScope();
        return EarlyStopping.Judge(run.RunAsync(StepCount, towers).GetAwaiter().GetResult());
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
        step.Dispose();
        evaluation?.Dispose();
        heldOut?.Dispose();
        source.Dispose();
        Trunk.Dispose();
        Towers.Dispose();
        fence?.Dispose();
    }
}
