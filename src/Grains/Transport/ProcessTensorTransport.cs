using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Exchange between silos of one process: the payload carries a <see cref="ProcessTensorRegistry"/> entry, so the
/// tensor is neither copied nor serialized (like <see cref="LocalTensorTransport"/>, across a silo boundary).
/// </summary>
public sealed class ProcessTensorTransport : ITensorTransport
{
    public TensorPayloadKind Kind => TensorPayloadKind.Process;

    public TensorPayload Pack(Tensor tensor) =>
        TensorPayload.OfProcess(tensor.dtype, tensor.shape, ProcessTensorRegistry.Register(tensor.alias().DetachFromDisposeScope()), ProcessTensorRegistry.Process);

    public Tensor Unpack(TensorPayload payload, Device device)
    {
        if (payload.Kind != TensorPayloadKind.Process || payload.Origin != ProcessTensorRegistry.Process)
            throw new InvalidOperationException($"{payload} from process '{payload.Origin}' cannot be unpacked in process '{ProcessTensorRegistry.Process}'.");
        using var taken = ProcessTensorRegistry.Take(payload.Transfer);
        return taken.device == device ? taken.alias() : taken.to(device);
    }
}
