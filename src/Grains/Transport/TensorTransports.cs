using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Picks the transport for a peer: no copy to a grain in this silo, the Orleans message to any other. A receiver
/// replies in the kind it was sent. A DI singleton of each silo.
/// </summary>
public sealed class TensorTransports(ILocalSiloDetails silo, IOptions<SiloMessagingOptions> messaging)
{
    public LocalTensorTransport Local { get; } = new();
    public MessageTensorTransport Message { get; } = new(messaging.Value.MaxMessageBodySize - MessageTensorTransport.HeaderRoom);
    public string SiloName => silo.Name;

    public ITensorTransport ToSilo(string siloName) => siloName == silo.Name ? Local : Message;

    public ITensorTransport For(TensorPayload payload) => payload.Kind switch
    {
        TensorPayloadKind.Local => Local,
        TensorPayloadKind.Inline => Message,
        _ => throw new NotSupportedException($"no transport for {payload}."),
    };
}
