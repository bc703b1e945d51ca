using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Moves tensors between grains. The sender packs on its device executor, the payload rides in a grain call,
/// the receiver unpacks on its device executor. Implementations: <see cref="LocalTensorTransport"/> (same silo,
/// no copy) and <see cref="MessageTensorTransport"/> (bytes in the Orleans message, any silo). Faster out-of-band
/// transports (CUDA IPC, TCP, NCCL) implement the same two calls with a handle in the payload.
/// </summary>
public interface ITensorTransport
{
    TensorPayloadKind Kind { get; }

    /// <summary>A payload for one receiver. The caller keeps (and disposes) its own handle to <paramref name="tensor"/>.</summary>
    TensorPayload Pack(Tensor tensor);

    /// <summary>The payload's tensor on <paramref name="device"/>, a new handle in the caller's dispose scope.</summary>
    Tensor Unpack(TensorPayload payload, Device device);
}
