using Microsoft.Extensions.Options;
using Orchestrator.Grains.Placement;
using Orleans.Configuration;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Picks the transport for a peer: no copy to a grain in this silo; to another silo, the TCP data channel for large
/// GPU tensors (or when the job asks for it) and the Orleans message otherwise. A receiver replies in the kind it
/// was sent. A DI singleton of each silo.
/// </summary>
public sealed class TensorTransports(ILocalSiloDetails silo, IOptions<SiloMessagingOptions> messaging, ChannelEndpoint channelEndpoint)
{
    /// <summary>"auto" sends slices at least this large to GPU workers over the data channel.</summary>
    public const long ChannelThresholdBytes = 1 << 20;

    public LocalTensorTransport Local { get; } = new();
    public MessageTensorTransport Message { get; } = new(messaging.Value.MaxMessageBodySize - MessageTensorTransport.HeaderRoom);
    public string SiloName => silo.Name;

    /// <summary>
    /// The transport for a worker on <paramref name="device"/> that exchanges slices of up to <paramref name="sliceBytes"/>
    /// under the job's transport choice ("auto", "message" or "channel").
    /// </summary>
    public ITensorTransport ToWorker(ClusterDevice device, long sliceBytes, string choice)
    {
        if (device.Silo == silo.Name) return Local;
        bool channel = choice switch
        {
            "channel" => true,
            "message" => false,
            _ => device.Device != "cpu" && sliceBytes >= ChannelThresholdBytes && device.DataChannel is not null,
        };
        if (!channel) return Message;
        return new ChannelTensorTransport(channelEndpoint, device.DataChannel
            ?? throw new InvalidOperationException($"silo {device.Silo} advertises no data channel; use the message transport."));
    }

    /// <summary>The transport that unpacks <paramref name="payload"/> and packs the reply to its sender.</summary>
    public ITensorTransport For(TensorPayload payload) => payload.Kind switch
    {
        TensorPayloadKind.Local => Local,
        TensorPayloadKind.Inline => Message,
        TensorPayloadKind.Channel => new ChannelTensorTransport(channelEndpoint, payload.ReplyTo!),
        _ => throw new NotSupportedException($"no transport for {payload}."),
    };
}
