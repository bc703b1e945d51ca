using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>How a payload carries its tensor.</summary>
public enum TensorPayloadKind
{
    /// <summary>A TorchSharp tensor handle: only valid inside the silo (process) that made it.</summary>
    Local,
    /// <summary>The raw bytes inside the Orleans message.</summary>
    Inline,
    /// <summary>The bytes went ahead over the TCP data channel; the message carries the transfer id.</summary>
    Channel,
    // Later transports (CUDA IPC, NCCL) add kinds here: the message carries their handle or ticket, the tensor
    // travels out of band.
}

/// <summary>
/// A tensor passed to or returned from a grain call. Immutable by contract: the sender never touches it again,
/// and exactly one receiver unpacks it (through the <see cref="ITensorTransport"/> of its <see cref="Kind"/>).
/// In-silo calls hand over the very same instance (<see cref="TensorPayloadCopier"/>); calls to another silo
/// serialize it (<see cref="TensorPayloadConverter"/>), which only Inline payloads allow.
/// </summary>
[Immutable]
public sealed class TensorPayload : IDisposable
{
    public TensorPayloadKind Kind { get; }
    public ScalarType DType { get; }
    public long[] Shape { get; }
    /// <summary>Inline: the contiguous little-endian elements.</summary>
    public byte[]? Data { get; }
    /// <summary>Channel: the id the bytes were sent under, and the sender's channel endpoint ("host:port") for a reply.</summary>
    public Guid Transfer { get; }
    public string? ReplyTo { get; }
    Tensor? local;

    TensorPayload(TensorPayloadKind kind, ScalarType dtype, long[] shape, byte[]? data, Tensor? local, Guid transfer = default, string? replyTo = null)
    {
        (Kind, DType, Shape, Data, this.local, Transfer, ReplyTo) = (kind, dtype, shape, data, local, transfer, replyTo);
    }

    /// <summary>A tensor already sent over the data channel as <paramref name="transfer"/>.</summary>
    public static TensorPayload OfChannel(ScalarType dtype, long[] shape, Guid transfer, string replyTo)
    {
        if (shape.Any(d => d < 0)) throw new InvalidDataException($"tensor payload has a negative dimension in ({string.Join(", ", shape)}).");
        return new(TensorPayloadKind.Channel, dtype, shape, null, null, transfer, replyTo);
    }

    /// <summary>Owns <paramref name="tensor"/>, a handle detached from every dispose scope.</summary>
    public static TensorPayload OfLocal(Tensor tensor) =>
        new(TensorPayloadKind.Local, tensor.dtype, tensor.shape, null, tensor);

    /// <summary>Checks that the bytes match dtype and shape, so a corrupt or hostile message cannot build a bad tensor.</summary>
    public static TensorPayload OfBytes(ScalarType dtype, long[] shape, byte[] data)
    {
        if (shape.Any(d => d < 0)) throw new InvalidDataException($"tensor payload has a negative dimension in ({string.Join(", ", shape)}).");
        long expected = ByteCount(dtype, shape);
        if (data.LongLength != expected)
            throw new InvalidDataException($"tensor payload {dtype} ({string.Join(", ", shape)}) needs {expected} bytes but carries {data.LongLength}.");
        return new(TensorPayloadKind.Inline, dtype, shape, data, null);
    }

    public long Bytes => ByteCount(DType, Shape);

    /// <summary>Takes the local tensor; the caller owns it from now on. A second take is an error.</summary>
    public Tensor TakeLocal()
    {
        if (Kind != TensorPayloadKind.Local) throw new InvalidOperationException($"a {Kind} payload holds no local tensor.");
        return Interlocked.Exchange(ref local, null) ?? throw new InvalidOperationException($"{this} was already unpacked.");
    }

    public override string ToString() => $"{Kind} tensor payload {DType} ({string.Join(", ", Shape)})";

    /// <summary>Releases a local tensor nobody took (a failed call).</summary>
    public void Dispose() => Interlocked.Exchange(ref local, null)?.Dispose();

    static long ByteCount(ScalarType dtype, long[] shape) => checked(shape.Aggregate(1L, (a, b) => a * b) * Kernels.DTypeNames.ElementSize(dtype));
}
