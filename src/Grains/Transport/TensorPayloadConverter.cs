using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>What an Inline payload looks like on the wire: dtype, shape and raw bytes (bf16 stays 2 bytes).</summary>
[GenerateSerializer]
public struct TensorPayloadSurrogate
{
    [Id(0)] public string DType;   // a ScalarType name, e.g. "BFloat16"
    [Id(1)] public long[] Shape;
    [Id(2)] public byte[] Data;
}

/// <summary>Serializes payloads that cross silos. A Local payload cannot: its tensor handle means nothing elsewhere.</summary>
[RegisterConverter]
public sealed class TensorPayloadConverter : IConverter<TensorPayload, TensorPayloadSurrogate>
{
    public TensorPayloadSurrogate ConvertToSurrogate(in TensorPayload value) => value.Kind == TensorPayloadKind.Inline
        ? new TensorPayloadSurrogate { DType = value.DType.ToString(), Shape = value.Shape, Data = value.Data! }
        : throw new NotSupportedException(
            $"{value} cannot leave its silo: pack tensors for another silo with the message transport (TensorTransports.ToSilo).");

    public TensorPayload ConvertFromSurrogate(in TensorPayloadSurrogate surrogate) =>
        TensorPayload.OfBytes(
            Enum.TryParse<ScalarType>(surrogate.DType, out var dtype) && Enum.IsDefined(dtype) ? dtype
                : throw new InvalidDataException($"tensor payload has unknown dtype '{surrogate.DType}'."),
            surrogate.Shape, surrogate.Data);
}
