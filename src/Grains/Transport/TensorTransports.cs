using Microsoft.Extensions.Options;
using Orchestrator.Grains.Placement;
using Orchestrator.Training;
using Orleans.Configuration;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Picks the transport for a peer, cheapest first: a reference to a grain in this silo; for large GPU tensors, a
/// registry entry to a silo of this process, a CUDA IPC buffer to a silo process of this host, the TCP data channel
/// to another host; Orleans messages for CPU workers, small tensors, and when the job asks for them. A receiver
/// replies in the kind it was sent. A DI singleton of each silo.
/// </summary>
public sealed class TensorTransports(ILocalSiloDetails silo, IOptions<SiloMessagingOptions> messaging, ChannelEndpoint channelEndpoint)
{
    /// <summary>"auto" moves slices at least this large to GPU workers out of band.</summary>
    public const long OutOfBandThresholdBytes = 1 << 20;

    public LocalTensorTransport Local { get; } = new();
    public ProcessTensorTransport Process { get; } = new();
    public MessageTensorTransport Message { get; } = new(messaging.Value.MaxMessageBodySize - MessageTensorTransport.HeaderRoom);
    public string SiloName => silo.Name;

    /// <summary>
    /// The transport from a coordinator whose trunk runs on <paramref name="trunkDevice"/> of this silo to a worker on
    /// <paramref name="worker"/>, for slices of up to <paramref name="sliceBytes"/> (<paramref name="slice"/> describes
    /// them), under the job's transport choice. A choice the two ends cannot use is a <see cref="JobSpecException"/>;
    /// a slice too large for the message transport, when that is the one, a <see cref="TensorPayloadTooLargeException"/>.
    /// </summary>
    public ITensorTransport ToWorker(ClusterDevice worker, string trunkDevice, long sliceBytes, TransportChoice choice, string slice)
    {
        if (worker.Silo == silo.Name) return Local;
        bool sameProcess = worker.Process == SiloLocality.Process;
        bool ipc = !sameProcess && worker.Host == SiloLocality.Host && worker.IsGpu && Kernels.Devices.IsGpuName(trunkDevice);
        ITensorTransport MessageIfFits()
        {
            Message.CheckFits(sliceBytes, slice);
            return Message;
        }
        return choice switch
        {
            TransportChoice.Message => MessageIfFits(),
            TransportChoice.Channel => Channel(worker),
            TransportChoice.Process => sameProcess ? Process : throw Unusable(choice, worker, "it runs in another process than the coordinator"),
            TransportChoice.Ipc => ipc ? new IpcTensorTransport()
                : throw Unusable(choice, worker, "CUDA IPC needs a GPU worker in another process of the coordinator's host and the trunk on a GPU"),
            _ when !worker.IsGpu || sliceBytes < OutOfBandThresholdBytes => MessageIfFits(),
            _ when sameProcess => Process,
            _ when ipc => new IpcTensorTransport(),
            _ => worker.DataChannel is null ? MessageIfFits() : Channel(worker),
        };
    }

    ChannelTensorTransport Channel(ClusterDevice worker) => new(channelEndpoint, worker.DataChannel
        ?? throw new JobSpecException(nameof(JobSpec.Transport), $"silo {worker.Silo} advertises no data channel; use the message transport."));

    /// <summary>
    /// Announces to this silo's data channel that a job part here receives transfers of up to <paramref name="bytes"/>
    /// until the handle is disposed; the channel refuses every other transfer (<see cref="ChannelEndpoint.Expect"/>).
    /// </summary>
    public IDisposable ExpectChannelTransfers(long bytes) => channelEndpoint.Expect(bytes);

    static JobSpecException Unusable(TransportChoice choice, ClusterDevice worker, string why) =>
        new(nameof(JobSpec.Transport), $"'{EnumNames.Of(choice)}' cannot reach worker device {worker}: {why}.");

    /// <summary>
    /// The transport that unpacks a request and packs the reply to its sender. CUDA IPC payloads need the state of
    /// their link (buffers and mappings), which the receiving worker keeps: they are not served here.
    /// </summary>
    public ITensorTransport For(TensorPayload payload) => payload.Kind switch
    {
        TensorPayloadKind.Local => Local,
        TensorPayloadKind.Message => Message,
        TensorPayloadKind.Process => Process,
        TensorPayloadKind.Channel => new ChannelTensorTransport(channelEndpoint, payload.Origin!),
        _ => throw new NotSupportedException($"no stateless transport for {payload}; its link's transport unpacks it."),
    };
}
