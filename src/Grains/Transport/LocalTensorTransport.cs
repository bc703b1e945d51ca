using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Same-silo exchange: the payload carries a second handle to the sender's tensor (views included), so nothing is
/// copied or serialized. The tensor must not be modified after packing; every producer here makes fresh tensors.
/// </summary>
public sealed class LocalTensorTransport : ITensorTransport
{
    public TensorPayloadKind Kind => TensorPayloadKind.Local;

    public TensorPayload Pack(Tensor tensor) => TensorPayload.OfLocal(tensor.alias().DetachFromDisposeScope());

    public Tensor Unpack(TensorPayload payload, Device device)
    {
        using var taken = payload.TakeLocal();
        return taken.device == device ? taken.alias() : taken.to(device);
    }
}
