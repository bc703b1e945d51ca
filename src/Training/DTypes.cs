using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>Names of the floating dtypes a job can train in, and of devices ("cpu", "cuda:N").</summary>
public static class DTypes
{
    static readonly Dictionary<string, ScalarType> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["float64"] = ScalarType.Float64, ["f64"] = ScalarType.Float64, ["double"] = ScalarType.Float64,
        ["float32"] = ScalarType.Float32, ["f32"] = ScalarType.Float32, ["float"] = ScalarType.Float32,
        ["float16"] = ScalarType.Float16, ["f16"] = ScalarType.Float16, ["half"] = ScalarType.Float16,
        ["bfloat16"] = ScalarType.BFloat16, ["bf16"] = ScalarType.BFloat16,
    };

    public static bool TryParse(string? name, out ScalarType dtype) => ByName.TryGetValue(name ?? "", out dtype);

    public static ScalarType Parse(string name) => TryParse(name, out var dtype)
        ? dtype
        : throw new ArgumentException($"unknown dtype '{name}'; use float64, float32, float16 or bfloat16.", nameof(name));

    /// <summary>Bytes per element of the dtypes tensors are exchanged and stored in.</summary>
    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new ArgumentException($"no element size known for {dtype}.", nameof(dtype)),
    };

    /// <summary>"cpu" or "cuda:N" (N >= 0). Anything else is not a device this system schedules on.</summary>
    public static bool IsDeviceName(string? name) =>
        name == "cpu" || (name is not null && name.StartsWith("cuda:", StringComparison.Ordinal)
                          && int.TryParse(name.AsSpan(5), out int ordinal) && ordinal >= 0 && name[5..] == ordinal.ToString());
}
