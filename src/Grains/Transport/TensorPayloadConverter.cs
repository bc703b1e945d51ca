using Orchestrator.Kernels.Cuda.Ipc;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// What a payload looks like on the wire: dtype, shape and either the raw bytes (Message; bf16 stays 2 bytes) or a
/// ticket for a tensor that travels (or waits) elsewhere: the data channel's transfer id and reply endpoint (Channel),
/// a registry entry of the sending process (Process), a CUDA IPC buffer handle and sequence number (Ipc).
/// </summary>
[GenerateSerializer]
public struct TensorPayloadSurrogate
{
    [Id(0)] public string DType;   // a ScalarType name, e.g. "BFloat16"
    [Id(1)] public long[] Shape;
    [Id(2)] public byte[]? Data;
    [Id(3)] public TensorPayloadKind Kind;
    [Id(4)] public Guid Transfer;
    [Id(5)] public string? Origin;
    [Id(6)] public byte[]? IpcHandle;
    [Id(7)] public ulong Sequence;
}

/// <summary>Serializes payloads that cross silos. A Local payload cannot: its tensor handle means nothing elsewhere.</summary>
[RegisterConverter]
public sealed class TensorPayloadConverter : IConverter<TensorPayload, TensorPayloadSurrogate>
{
    public TensorPayloadSurrogate ConvertToSurrogate(in TensorPayload value) => value.Kind == TensorPayloadKind.Local
        ? throw new NotSupportedException($"{value} cannot leave its silo: pack tensors for another silo with its transport (TensorTransports.ToWorker).")
        : new TensorPayloadSurrogate
        {
            Kind = value.Kind, DType = value.DType.ToString(), Shape = value.Shape, Data = value.Data, Transfer = value.Transfer,
            Origin = value.Origin, IpcHandle = value.IpcHandle, Sequence = value.Sequence,
        };

    public TensorPayload ConvertFromSurrogate(in TensorPayloadSurrogate surrogate)
    {
        var dtype = Enum.TryParse<ScalarType>(surrogate.DType, out var parsed) && Enum.IsDefined(parsed) ? parsed
            : throw new InvalidDataException($"tensor payload has unknown dtype '{surrogate.DType}'.");
        var shape = surrogate.Shape ?? throw new InvalidDataException("tensor payload has no shape.");
        var kind = surrogate.Kind;
        var origin = surrogate.Origin;
        string Origin() => origin ?? throw new InvalidDataException($"{kind} tensor payload does not say where it came from.");
        return surrogate.Kind switch
        {
            TensorPayloadKind.Message => TensorPayload.OfBytes(dtype, shape, surrogate.Data ?? throw new InvalidDataException("message tensor payload has no data.")),
            TensorPayloadKind.Channel => TensorPayload.OfChannel(dtype, shape, surrogate.Transfer, Origin()),
            TensorPayloadKind.Process => TensorPayload.OfProcess(dtype, shape, surrogate.Transfer, Origin()),
            TensorPayloadKind.Ipc => TensorPayload.OfIpc(dtype, shape, surrogate.Transfer,
                surrogate.IpcHandle ?? throw new InvalidDataException("CUDA IPC tensor payload has no handle."), surrogate.Sequence, Origin()),
            _ => throw new InvalidDataException($"tensor payload kind {surrogate.Kind} cannot arrive from another silo."),
        };
    }
}
