using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Any-silo exchange through the Orleans message itself: dtype, shape and the contiguous bytes (bf16 stays 2 bytes).
/// Simple and always available, but slow (about 0.3 GB/s between silos), and bounded by the messaging options'
/// MaxMessageBodySize: a bigger tensor is refused with an error that names both sizes.
/// </summary>
public sealed class MessageTensorTransport(long maxPayloadBytes) : ITensorTransport
{
    /// <summary>Room left in a message for everything besides the tensor bytes.</summary>
    public const long HeaderRoom = 64 << 10;

    public long MaxPayloadBytes { get; } = maxPayloadBytes;
    public TensorPayloadKind Kind => TensorPayloadKind.Message;

    public TensorPayload Pack(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        CheckFits(tensor.numel() * Kernels.DTypeNames.ElementSize(tensor.dtype), $"{Kernels.DTypeNames.Name(tensor.dtype)} ({string.Join(", ", tensor.shape)})");
        var data = tensor.detach().cpu().contiguous();
        return TensorPayload.OfBytes(data.dtype, data.shape, data.bytes.ToArray());
    }

    public Tensor Unpack(TensorPayload payload, Device device)
    {
        using var scope = NewDisposeScope();
        var host = empty(payload.Shape, payload.DType);
        host.bytes = payload.Data;
        return (host.device == device ? host : host.to(device)).MoveToOuterDisposeScope();
    }

    /// <summary>Throws <see cref="TensorPayloadTooLargeException"/> when <paramref name="bytes"/> would not fit one message.</summary>
    public void CheckFits(long bytes, string what)
    {
        if (bytes > MaxPayloadBytes)
            throw new TensorPayloadTooLargeException(
                $"tensor {what} is {bytes:N0} bytes, over the {MaxPayloadBytes:N0} bytes an Orleans message may carry here " +
                $"(MaxMessageBodySize less {HeaderRoom:N0} for the rest of the message). Raise the message limit on every " +
                "silo and client (--max-message-mb), or spread the groups over more workers.");
    }
}

/// <summary>A tensor too big for one Orleans message; serializable so the caller of a grain sees the message.</summary>
[GenerateSerializer]
public sealed class TensorPayloadTooLargeException(string message) : Exception(message);
