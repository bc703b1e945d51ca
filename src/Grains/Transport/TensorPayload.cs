using Orchestrator.Kernels.Cuda.Ipc;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>How a payload carries its tensor.</summary>
public enum TensorPayloadKind
{
    /// <summary>A TorchSharp tensor handle: only valid inside the silo (process) that made it.</summary>
    Local,
    /// <summary>The raw bytes inside the Orleans message.</summary>
    Message,
    /// <summary>The bytes went ahead over the TCP data channel; the message carries the transfer id.</summary>
    Channel,
    /// <summary>The tensor waits in this process's <see cref="ProcessTensorRegistry"/> (another silo of the same process).</summary>
    Process,
    /// <summary>The tensor waits in a device buffer of the sending process, mapped by the receiver through CUDA IPC.</summary>
    Ipc,
}

/// <summary>
/// A tensor passed to or returned from a grain call. Immutable by contract: the sender never touches it again,
/// and exactly one receiver unpacks it (through the <see cref="ITensorTransport"/> of its <see cref="Kind"/>).
/// In-silo calls hand over the very same instance (<see cref="TensorPayloadCopier"/>); calls to another silo
/// serialize it (<see cref="TensorPayloadConverter"/>), which every kind but Local allows.
/// </summary>
[Immutable]
public sealed class TensorPayload : IDisposable
{
    public TensorPayloadKind Kind { get; }
    public ScalarType DType { get; }
    public long[] Shape { get; }
    /// <summary>Message: the contiguous little-endian elements.</summary>
    public byte[]? Data { get; }
    /// <summary>Channel: the transfer id; Process: the registry entry; Ipc: the sender's shared buffer.</summary>
    public Guid Transfer { get; }
    /// <summary>Channel: the sender's channel endpoint ("host:port") for a reply; Process and Ipc: the sender's process.</summary>
    public string? Origin { get; }
    /// <summary>Ipc: the CUDA IPC handles of the sender's shared buffer (memory, then write event) and the sequence number of this transfer in it.</summary>
    public byte[]? IpcHandle { get; }
    public ulong Sequence { get; }
    Tensor? local;

    TensorPayload(TensorPayloadKind kind, ScalarType dtype, long[] shape, byte[]? data = null, Tensor? local = null, Guid transfer = default,
        string? origin = null, byte[]? ipcHandle = null, ulong sequence = 0)
    {
        if (shape.Any(d => d < 0)) throw new InvalidDataException($"tensor payload has a negative dimension in ({string.Join(", ", shape)}).");
        (Kind, DType, Shape, Data, this.local, Transfer, Origin, IpcHandle, Sequence) = (kind, dtype, shape, data, local, transfer, origin, ipcHandle, sequence);
    }

    /// <summary>A tensor already sent over the data channel as <paramref name="transfer"/>.</summary>
    public static TensorPayload OfChannel(ScalarType dtype, long[] shape, Guid transfer, string replyTo) =>
        new(TensorPayloadKind.Channel, dtype, shape, transfer: transfer, origin: replyTo);

    /// <summary>A tensor registered as <paramref name="entry"/> in the <see cref="ProcessTensorRegistry"/> of <paramref name="process"/>.</summary>
    public static TensorPayload OfProcess(ScalarType dtype, long[] shape, Guid entry, string process) =>
        new(TensorPayloadKind.Process, dtype, shape, transfer: entry, origin: process);

    /// <summary>A tensor written as <paramref name="sequence"/> into shared buffer <paramref name="buffer"/> of <paramref name="process"/>.</summary>
    public static TensorPayload OfIpc(ScalarType dtype, long[] shape, Guid buffer, byte[] handle, ulong sequence, string process)
    {
        if (handle.Length != SharedDeviceBuffer.HandlesBytes)
            throw new InvalidDataException($"CUDA IPC tensor payload has {handle.Length} handle bytes; a shared buffer is named by {SharedDeviceBuffer.HandlesBytes}.");
        return new(TensorPayloadKind.Ipc, dtype, shape, transfer: buffer, origin: process, ipcHandle: handle, sequence: sequence);
    }

    /// <summary>Owns <paramref name="tensor"/>, a handle detached from every dispose scope.</summary>
    public static TensorPayload OfLocal(Tensor tensor) => new(TensorPayloadKind.Local, tensor.dtype, tensor.shape, local: tensor);

    /// <summary>Checks that the bytes match dtype and shape, so a corrupt or hostile message cannot build a bad tensor.</summary>
    public static TensorPayload OfBytes(ScalarType dtype, long[] shape, byte[] data)
    {
        var payload = new TensorPayload(TensorPayloadKind.Message, dtype, shape, data);
        if (data.LongLength != payload.Bytes)
            throw new InvalidDataException($"tensor payload {dtype} ({string.Join(", ", shape)}) needs {payload.Bytes} bytes but carries {data.LongLength}.");
        return payload;
    }

    public long Bytes => checked(Shape.Aggregate(1L, (a, b) => a * b) * Kernels.DTypeNames.ElementSize(DType));

    /// <summary>Takes the local tensor; the caller owns it from now on. A second take is an error.</summary>
    public Tensor TakeLocal()
    {
        if (Kind != TensorPayloadKind.Local) throw new InvalidOperationException($"a {Kind} payload holds no local tensor.");
        return Interlocked.Exchange(ref local, null) ?? throw new InvalidOperationException($"{this} was already unpacked.");
    }

    public override string ToString() => $"{Kind} tensor payload {DType} ({string.Join(", ", Shape)})";

    /// <summary>Releases a tensor nobody took (a failed call): a local handle, or this process's registry entry.</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref local, null)?.Dispose();
        if (Kind == TensorPayloadKind.Process && Origin == ProcessTensorRegistry.Process) ProcessTensorRegistry.Drop(Transfer);
    }
}
