using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orleans.Placement;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains;

/// <summary>
/// A worker: one <see cref="TowerShard"/> on one device of its silo. It stays where the placement put it
/// (immovable) and is never collected while the job holds its weights (keep-alive); the coordinator stops it.
/// Every TorchSharp call runs on the device's executor thread.
/// </summary>
[DevicePlacement, Immovable, KeepAlive]
public sealed class WorkerGrain : Grain, IWorkerGrain
{
    readonly TensorTransports transports;
    readonly ILogger<WorkerGrain> log;
    readonly WorkerKey key;
    readonly DeviceExecutor executor;
    TowerShard? shard;
    Guid owner;
    /// <summary>This end of the CUDA IPC link to the coordinator, made when its first IPC payload arrives.</summary>
    IpcTensorTransport? ipc;
    /// <summary>This shard's announcement to the silo's data channel: slices of its size from the coordinator.</summary>
    IDisposable? expected;

    readonly JobMemoryLimit memory;

    public WorkerGrain(DeviceExecutors executors, TensorTransports transports, JobMemoryLimit memory, ILogger<WorkerGrain> log)
    {
        (this.transports, this.memory, this.log) = (transports, memory, log);
        key = WorkerKey.Parse(this.GetPrimaryKeyString());   // the grain's identity is known before its constructor runs
        executor = executors.For(key.Device);
    }

    public async Task InitAsync(WorkerSetup setup)
    {
        await ReleaseShard();
        owner = setup.Owner;
        expected = transports.ExpectChannelTransfers(setup.SliceBytes);
        shard = await executor.RunAsync(() =>
        {
            var (available, source) = memory.Available(executor.TorchDevice);
            setup.DeviceNeed.Check(available, $"{key.Silo}/{key.Device}", source,
                $"job '{setup.Job}' (worker {key}, groups {setup.Groups}; {setup.DeviceGroups} of its groups on this device)");
            return Build(setup);
        });
        log.LogInformation("Worker {Worker} on {Silo}/{Device} holds groups {Groups} of job {Job}",
            key.ToString(), key.Silo, key.Device, setup.Groups.ToString(), key.Job);
    }

    /// <summary>The shard from the job's seed, or from the checkpoint the setup names.</summary>
    TowerShard Build(WorkerSetup setup)
    {
        if (setup.Restore is { } restore)
            return new CheckpointStore(restore.Directory).Open(setup.Job, restore.Step).CreateTowers(setup.Groups, executor.TorchDevice);
        var towers = setup.Towers;
        return new TowerShard(towers.Shape, setup.Groups, towers.Seed, towers.DType, executor.TorchDevice, towers.Optimizer);
    }

    public Task<TensorPayload> ForwardAsync(TensorPayload x) => Exchange(x, (s, input) => s.Forward(input));

    public Task<TensorPayload> BackwardAsync(TensorPayload dY) => Exchange(dY, (s, gradient) => s.BackwardDeferred(gradient));

    TowerShard Current => shard ?? throw new InvalidOperationException($"worker {key} has no shard; call InitAsync first.");

    /// <summary>Unpack, compute, pack the reply in the kind the request came in, all on the device thread.</summary>
    Task<TensorPayload> Exchange(TensorPayload request, Func<TowerShard, Tensor, Tensor> compute)
    {
        if (shard is not { } current)
        {
            request.Dispose();
            throw new InvalidOperationException($"worker {key} has no shard; call InitAsync first.");
        }
        var transport = request.Kind == TensorPayloadKind.Ipc ? ipc ??= new IpcTensorTransport() : transports.For(request);
        return executor.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            var input = transport.Unpack(request, executor.TorchDevice);
            return transport.Pack(compute(current, input));
        });
    }

    public Task<TensorPayload> InferAsync(TensorPayload x) => Exchange(x, (s, input) => s.Infer(input));

    public Task<double> PendingSquaredNormAsync() => executor.RunAsync(() => Current.PendingSquaredNorm());

    public Task AcceptAsync(double gradientScale) => executor.RunAsync(() => Current.ApplyPending(gradientScale));

    public Task DiscardAsync() => shard is { } current ? executor.RunAsync(current.Discard) : Task.CompletedTask;

    public async Task<ShardFile> CheckpointAsync(CheckpointTicket ticket)
    {
        var current = Current;
        using var state = await executor.RunAsync(() =>
        {
            current.ApplyPending();              // the last step was accepted: the coordinator checkpoints only after it
            return ShardState.Export(current);   // CPU copies, taken between steps
        });
        return await Task.Run(() => ticket.WriteTowers(state));                         // file I/O off the device thread
    }

    public Task<Dictionary<string, TensorPayload>> ExportAsync()
    {
        var current = Current;
        return executor.RunAsync(() =>
        {
            current.ApplyPending();   // a step that returned was accepted
            return new Dictionary<string, TensorPayload>
            {
                [ParameterNames.TowerGateUp] = transports.Message.Pack(current.WGateUp),
                [ParameterNames.TowerDown] = transports.Message.Pack(current.WDown),
            };
        });
    }

    public async Task StopAsync(Guid stoppedBy)
    {
        if (stoppedBy != owner)
        {
            log.LogInformation("Worker {Worker} ignores a stop from a coordinator it no longer serves", key.ToString());
            return;
        }
        await ReleaseShard();
        this.DeactivateOnIdle();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => ReleaseShard();

    /// <summary>Frees the shard and this end of the IPC link (the coordinator closed its mappings of our buffers first).</summary>
    Task ReleaseShard()
    {
        var (oldShard, oldLink) = (shard, ipc);
        (shard, ipc) = (null, null);
        expected?.Dispose();
        expected = null;
        return oldShard is null && oldLink is null ? Task.CompletedTask : executor.RunAsync(() =>
        {
            oldLink?.Dispose();
            oldShard?.Dispose();
        });
    }
}
