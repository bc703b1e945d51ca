using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// What a payload looks like on the wire: dtype, shape and either the raw bytes (Inline; bf16 stays 2 bytes) or
/// the data channel's transfer id and reply endpoint (Channel).
/// </summary>
[GenerateSerializer]
public struct TensorPayloadSurrogate
{
    [Id(0)] public string DType;   // a ScalarType name, e.g. "BFloat16"
    [Id(1)] public long[] Shape;
    [Id(2)] public byte[]? Data;
    [Id(3)] public TensorPayloadKind Kind;
    [Id(4)] public Guid Transfer;
    [Id(5)] public string? ReplyTo;
}

/// <summary>Serializes payloads that cross silos. A Local payload cannot: its tensor handle means nothing elsewhere.</summary>
[RegisterConverter]
public sealed class TensorPayloadConverter : IConverter<TensorPayload, TensorPayloadSurrogate>
{
    public TensorPayloadSurrogate ConvertToSurrogate(in TensorPayload value) => value.Kind switch
    {
        TensorPayloadKind.Inline => new TensorPayloadSurrogate { Kind = value.Kind, DType = value.DType.ToString(), Shape = value.Shape, Data = value.Data! },
        TensorPayloadKind.Channel => new TensorPayloadSurrogate
            { Kind = value.Kind, DType = value.DType.ToString(), Shape = value.Shape, Transfer = value.Transfer, ReplyTo = value.ReplyTo },
        _ => throw new NotSupportedException(
            $"{value} cannot leave its silo: pack tensors for another silo with its transport (TensorTransports.ToWorker)."),
    };

    public TensorPayload ConvertFromSurrogate(in TensorPayloadSurrogate surrogate)
    {
        var dtype = Enum.TryParse<ScalarType>(surrogate.DType, out var parsed) && Enum.IsDefined(parsed) ? parsed
            : throw new InvalidDataException($"tensor payload has unknown dtype '{surrogate.DType}'.");
        var shape = surrogate.Shape ?? throw new InvalidDataException("tensor payload has no shape.");
        return surrogate.Kind switch
        {
            TensorPayloadKind.Inline => TensorPayload.OfBytes(dtype, shape, surrogate.Data ?? throw new InvalidDataException("inline tensor payload has no data.")),
            TensorPayloadKind.Channel => TensorPayload.OfChannel(dtype, shape, surrogate.Transfer,
                surrogate.ReplyTo ?? throw new InvalidDataException("channel tensor payload has no reply endpoint.")),
            _ => throw new InvalidDataException($"tensor payload kind {surrogate.Kind} cannot arrive from another silo."),
        };
    }
}
