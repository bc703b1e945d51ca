using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Transport;
using Orchestrator.Kernels.Cuda;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Grains;

/// <summary>
/// A job while it runs on the cluster: its spec and checkpoint store, the trunk, the data and the verdict's fence on the
/// trunk's executor, the placed workers, the one <see cref="TrainingStep"/> that drives them, and the export of its parameters. The coordinator
/// builds it when a job starts or recovers and frees it when the job stops or loses workers; it exists only between.
/// </summary>
internal sealed class RunningJob(JobSpec spec, CheckpointStore? checkpoints, DeviceExecutor executor, Trunk trunk, IBatchSource source,
    HeldOutData? heldOut, ValidationRecord? validation, StreamFence? fence, JobWorker[] workers, IDisposable channelAnnouncement)
{
    public JobSpec Spec { get; } = spec;
    /// <summary>Where checkpoints go; null when the spec names no directory.</summary>
    public CheckpointStore? Checkpoints { get; } = checkpoints;
    public CheckpointSchedule Schedule { get; } = new(spec.Checkpoint.EverySteps);
    /// <summary>Where the trunk, the loss and the gathers run.</summary>
    public DeviceExecutor Executor { get; } = executor;
    public Trunk Trunk { get; } = trunk;
    public IBatchSource Source { get; } = source;
    /// <summary>On a GPU trunk, marks where a step's verdict copy was queued (null on the CPU, where copies are synchronous).</summary>
    public StreamFence? Fence { get; } = fence;
    public JobWorker[] Workers { get; } = workers;
    /// <summary>The announcement to this silo's data channel of the workers' replies (their slices' size); disposed with the job.</summary>
    public IDisposable ChannelAnnouncement { get; } = channelAnnouncement;
    public TrainingStep Step { get; } = new(spec, trunk, source, fence, executor);
    /// <summary>The held-out data (null without validation) and the forward-only pass over it.</summary>
    public HeldOutData? HeldOut { get; } = heldOut;
    public Evaluation? Evaluation { get; } = heldOut is null ? null : new Evaluation(spec, trunk, heldOut, executor);
    /// <summary>The best validation loss so far, restored with the checkpoint the job continued from.</summary>
    public EarlyStopping EarlyStopping { get; } = new(spec.Validation.EarlyStopPatience, validation);

    /// <summary>Copies of all parameters as message payloads, the towers concatenated over the workers in group order.</summary>
    public async Task<Dictionary<string, TensorPayload>> ExportParametersAsync(MessageTensorTransport message)
    {
        var exports = await Task.WhenAll(Workers.Select(w => w.Grain.ExportAsync()));
        return await Executor.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            Tensor Towers(string name) => cat(exports.Select(e => message.Unpack(e[name], CPU)).ToArray(), 0);
            return new Dictionary<string, TensorPayload>
            {
                [ParameterNames.TrunkWeight] = message.Pack(Trunk.Weight),
                [ParameterNames.TrunkBias] = message.Pack(Trunk.Bias),
                [ParameterNames.TowerGateUp] = message.Pack(Towers(ParameterNames.TowerGateUp)),
                [ParameterNames.TowerDown] = message.Pack(Towers(ParameterNames.TowerDown)),
            };
        });
    }

    /// <summary>Frees the trunk-side tensors; on the executor's thread.</summary>
    public void Dispose()
    {
        Step.Dispose();
        Evaluation?.Dispose();
        HeldOut?.Dispose();
        Trunk.Dispose();
        Source.Dispose();
        Fence?.Dispose();
    }
}
