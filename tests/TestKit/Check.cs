using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.TestKit;

/// <summary>Fresh random inputs and relative-error assertions shared by the kernel tests.</summary>
public sealed class Check
{
    public int Seed { get; } = Random.Shared.Next();
    readonly Generator generator;

    public Check() => generator = new Generator((ulong)Seed);

    /// <summary>Standard normal values scaled to keep activations O(1); never zeros.</summary>
    public Tensor Randn(long[] shape, ScalarType dtype, double scale = 1.0, bool requiresGrad = false)
    {
        using var t = randn(shape, ScalarType.Float64, generator: generator);
        t.mul_(scale);
        return t.to(dtype).requires_grad_(requiresGrad);
    }

    /// <summary>‖actual − expected‖ / ‖expected‖, computed in float64.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.detach().to(ScalarType.Float64).cpu();
        var e = expected.detach().to(ScalarType.Float64).cpu();
        Assert.Equal(e.shape, a.shape);
        Assert.True(a.isfinite().all().item<bool>(), "result has non-finite values");
        var norm = e.norm().item<double>();
        Assert.True(norm > 0, "reference is all zeros: the check would prove nothing");
        return (a - e).norm().item<double>() / norm;
    }

    public void Close(Tensor actual, Tensor expected, double tolerance, string what)
    {
        var error = RelativeError(actual, expected);
        Assert.True(error < tolerance, $"{what}: relative error {error:E2} >= {tolerance:E0} (seed {Seed})");
    }

    public static double ToleranceFor(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 1e-10,
        ScalarType.Float32 => 1e-4,
        _ => 1e-2,
    };
}
