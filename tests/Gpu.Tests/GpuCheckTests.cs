using Orchestrator.Benchmarks;
using static TorchSharp.torch;

namespace Orchestrator.Gpu.Tests;

/// <summary>
/// What `orchestrator gpu-check` checks, as tests: on the CUDA device, every kernel (forward and gradients) and the
/// training step's fused kernels against their float64 references, over gpu-check's shapes, one test per dtype.
/// Without a CUDA device they report themselves skipped, not passed: a CPU run says nothing about the GPU paths.
/// </summary>
[Trait("Category", "Gpu")]
public sealed class GpuCheckTests
{
    public static TheoryData<ScalarType> DTypes => new(GpuCheck.DefaultDTypes);

    [SkippableTheory]
    [MemberData(nameof(DTypes))]
    public void Every_kernel_matches_its_float64_reference_on_the_GPU(ScalarType dtype)
    {
        Skip.IfNot(cuda.is_available(),
            "no CUDA device: needs an NVIDIA GPU and a CUDA libtorch (build with TorchBackend=system or cuda-linux)");

        var results = GpuCheck.Run(CUDA, [dtype], GpuCheck.DefaultShapes);

        Assert.NotEmpty(results);
        AllPassed(results, $"{dtype} checks");
    }

    public static TheoryData<ScalarType> ModuleDTypes => new(ScalarType.BFloat16, ScalarType.Float32);

    /// <summary>GroupedLinear and GroupedSwiGluMlp as modules, forward and autograd backward on CUDA, over gpu-check's shapes.</summary>
    [SkippableTheory]
    [MemberData(nameof(ModuleDTypes))]
    public void The_kernel_modules_match_the_float64_reference_on_the_GPU(ScalarType dtype)
    {
        Skip.IfNot(cuda.is_available(),
            "no CUDA device: needs an NVIDIA GPU and a CUDA libtorch (build with TorchBackend=system or cuda-linux)");

        var results = GpuCheck.DefaultShapes.SelectMany(shape => GpuCheck.CheckModules(CUDA, dtype, shape)).ToList();

        // Each module's output, dX and every parameter's gradient: GroupedLinear's weight and bias, the MLP's two weights.
        Assert.Equal(GpuCheck.DefaultShapes.Length * 8, results.Count);
        AllPassed(results, $"{dtype} module checks");
    }

    static void AllPassed(List<CheckResult> results, string what)
    {
        var failed = results.Where(r => !r.Passed)
            .Select(r => $"{r.Shape} {r.Quantity}: relative error {r.RelativeError:E2}, tolerance {r.Tolerance:E0}")
            .ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {results.Count} {what} failed:\n{string.Join('\n', failed)}");
    }
}
