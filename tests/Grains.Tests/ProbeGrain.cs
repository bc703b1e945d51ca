using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orleans.Runtime.MembershipService.SiloMetadata;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>A test grain pinned like a worker ("{silo}/{device}/probe/{n}") that moves tensors the way workers do.</summary>
public interface IProbeGrain : IGrainWithStringKey
{
    Task<string> WhereAsync();

    /// <summary>Unpacks on the device thread and packs the same values back, in the kind it came.</summary>
    Task<TensorPayload> EchoAsync(TensorPayload payload);

    /// <summary>
    /// Sends the (message) payload on to another probe with the transport the job choice (message, channel, auto)
    /// gives for that probe (or Local when forced), and returns the echo as a message payload.
    /// </summary>
    Task<TensorPayload> RelayAsync(string target, TensorPayload payload, bool forceLocal, TransportChoice choice = TransportChoice.Message);
}

[DevicePlacement]
public sealed class ProbeGrain(DeviceExecutors executors, TensorTransports transports, IClusterMembershipService membership, ISiloMetadataCache metadata)
    : Grain, IProbeGrain
{
    DeviceExecutor Executor => executors.For(WorkerKey.Parse(this.GetPrimaryKeyString()).Device);

    public Task<string> WhereAsync() => Task.FromResult(transports.SiloName);

    public Task<TensorPayload> EchoAsync(TensorPayload payload) => Executor.RunAsync(() =>
    {
        using var scope = NewDisposeScope();
        var transport = transports.For(payload);
        return transport.Pack(transport.Unpack(payload, Executor.TorchDevice));
    });

    public async Task<TensorPayload> RelayAsync(string target, TensorPayload payload, bool forceLocal, TransportChoice choice = TransportChoice.Message)
    {
        var key = WorkerKey.Parse(target);
        var device = ClusterDevices.Discover(membership, metadata).Single(d => d.Silo == key.Silo && d.Device == key.Device);
        var transport = forceLocal ? transports.Local : transports.ToWorker(device, Executor.Device, payload.Bytes, choice, payload.ToString());
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
