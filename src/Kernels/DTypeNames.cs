using TorchSharp;

namespace Orchestrator.Kernels;

/// <summary>The dtype names users type (bf16, float32, ...) and the ones we print.</summary>
public static class DTypeNames
{
    static readonly Dictionary<string, torch.ScalarType> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["bf16"] = torch.ScalarType.BFloat16, ["bfloat16"] = torch.ScalarType.BFloat16,
        ["f16"] = torch.ScalarType.Float16, ["fp16"] = torch.ScalarType.Float16, ["float16"] = torch.ScalarType.Float16, ["half"] = torch.ScalarType.Float16,
        ["f32"] = torch.ScalarType.Float32, ["fp32"] = torch.ScalarType.Float32, ["float32"] = torch.ScalarType.Float32, ["float"] = torch.ScalarType.Float32,
        ["f64"] = torch.ScalarType.Float64, ["fp64"] = torch.ScalarType.Float64, ["float64"] = torch.ScalarType.Float64, ["double"] = torch.ScalarType.Float64,
    };

    /// <summary>Parses a dtype name (case-insensitive, aliases such as bf16 included); false when unknown.</summary>
    public static bool TryParse(string? name, out torch.ScalarType dtype) => Known.TryGetValue(name?.Trim() ?? "", out dtype);

    /// <summary>The names a dtype option or field takes, as its errors list them.</summary>
    public const string Accepted = "bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64)";

    /// <summary>Why <paramref name="name"/> is refused as a dtype, with the names that are accepted.</summary>
    public static string Refusal(string? name) => $"'{name}' is not a dtype; use one of {Accepted}.";

    /// <summary>Bytes per element of the dtypes tensors are exchanged and stored in: the one table of element sizes.</summary>
    public static int ElementSize(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 or torch.ScalarType.ComplexFloat32 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        torch.ScalarType.Byte or torch.ScalarType.Int8 or torch.ScalarType.Bool => 1,
        torch.ScalarType.ComplexFloat64 => 16,
        _ => throw new ArgumentException($"no element size known for {dtype}.", nameof(dtype)),
    };

    /// <summary>The canonical lower-case name (bfloat16, float16, float32, float64).</summary>
    public static string Name(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.BFloat16 => "bfloat16",
        torch.ScalarType.Float16 => "float16",
        torch.ScalarType.Float32 => "float32",
        torch.ScalarType.Float64 => "float64",
        _ => dtype.ToString().ToLowerInvariant(),
    };
}
