using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>The dtype codes of the wire format (FrameHeader): fixed numbers, independent of TorchSharp's enum values.</summary>
internal static class WireDTypes
{
    static readonly (byte Code, torch.ScalarType DType)[] Known =
    [
        (1, torch.ScalarType.Float64),
        (2, torch.ScalarType.Float32),
        (3, torch.ScalarType.Float16),
        (4, torch.ScalarType.BFloat16),
        (5, torch.ScalarType.Int64),
        (6, torch.ScalarType.Int32),
    ];

    public static byte Code(torch.ScalarType dtype)
    {
        foreach (var known in Known)
            if (known.DType == dtype) return known.Code;
        throw new ArgumentException(
            $"dtype {dtype} cannot be sent over the data channel; it carries float64, float32, float16, bfloat16, int64 and int32.");
    }

    public static bool TryGet(byte code, out torch.ScalarType dtype)
    {
        foreach (var known in Known)
        {
            if (known.Code != code) continue;
            dtype = known.DType;
            return true;
        }
        dtype = default;
        return false;
    }
}
