using Orchestrator.Grains.Hosting;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Exchange over the TCP data channel, for large tensors between silos: Pack sends the bytes to the receiver's
/// channel server straight from the tensor's memory (GPU tensors staged through pinned host buffers) and returns a
/// payload that carries only the transfer id, so the grain message stays small; Unpack takes the tensor from this
/// silo's server. Pack returns once the bytes are sent, so a failed send fails the sender's call, not a waiting
/// receiver, and the sender's tensor may be released right after.
/// </summary>
public sealed class ChannelTensorTransport(ChannelEndpoint local, string destination) : ITensorTransport
{
    public TensorPayloadKind Kind => TensorPayloadKind.Channel;
    public string Destination { get; } = destination;

    public TensorPayload Pack(Tensor tensor)
    {
        var transfer = Guid.NewGuid();
        local.Client.SendAsync(OrchestratorHosting.ParseEndpoint(Destination), transfer, tensor).GetAwaiter().GetResult();
        return TensorPayload.OfChannel(tensor.dtype, tensor.shape, transfer, local.Advertised);
    }

    public Tensor Unpack(TensorPayload payload, Device device)
    {
        if (payload.Kind != TensorPayloadKind.Channel) throw new InvalidOperationException($"{payload} did not come over the data channel.");
        var host = local.Server.ReceiveAsync(payload.Transfer, local.ReceiveTimeout).GetAwaiter().GetResult();
        if (host.device == device) return host;
        using (host) return host.to(device);
    }
}
