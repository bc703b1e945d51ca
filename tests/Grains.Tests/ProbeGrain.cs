using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>A test grain pinned like a worker ("{silo}/{device}/probe/{n}") that moves tensors the way workers do.</summary>
public interface IProbeGrain : IGrainWithStringKey
{
    Task<string> WhereAsync();

    /// <summary>Unpacks on the device thread and packs the same values back, in the kind it came.</summary>
    Task<TensorPayload> EchoAsync(TensorPayload payload);

    /// <summary>Sends the (Inline) payload on to another probe with the transport for that silo (or Local when forced).</summary>
    Task<TensorPayload> RelayAsync(string target, TensorPayload payload, bool forceLocal);
}

[DevicePlacement]
public sealed class ProbeGrain(DeviceExecutors executors, TensorTransports transports) : Grain, IProbeGrain
{
    DeviceExecutor Executor => executors.For(WorkerKey.Parse(this.GetPrimaryKeyString()).Device);

    public Task<string> WhereAsync() => Task.FromResult(transports.SiloName);

    public Task<TensorPayload> EchoAsync(TensorPayload payload) => Executor.RunAsync(() =>
    {
        using var scope = NewDisposeScope();
        var transport = transports.For(payload);
        return transport.Pack(transport.Unpack(payload, Executor.TorchDevice));
    });

    public async Task<TensorPayload> RelayAsync(string target, TensorPayload payload, bool forceLocal)
    {
        var transport = forceLocal ? transports.Local : transports.ToSilo(WorkerKey.Parse(target).Silo);
        var outgoing = await Executor.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            return transport.Pack(transports.Message.Unpack(payload, CPU));
        });
        var reply = await GrainFactory.GetGrain<IProbeGrain>(target).EchoAsync(outgoing);
        return await Executor.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            return transports.Message.Pack(transports.For(reply).Unpack(reply, CPU));
        });
    }
}
