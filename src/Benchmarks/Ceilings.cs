using Orchestrator.Kernels;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>
/// The device's practical rates, measured in the run that reports against them: a large square matmul for GEMM work
/// and a large device-to-device copy (bytes read plus bytes written) for memory-bound work.
/// </summary>
public static class Ceilings
{
    /// <summary>TFLOP/s of an 8192³ matmul (1024³ on the CPU) in <paramref name="dtype"/>, random data.</summary>
    public static double GemmTflops(DeviceTimer timer, ScalarType dtype)
    {
        long size = timer.IsCuda ? 8192 : 1024;
        using var scope = NewDisposeScope();
        var a = randn([size, size], dtype, timer.Device);
        var b = randn([size, size], dtype, timer.Device);
        double ms = timer.MedianMs(_ => { using var product = a.matmul(b); });
        return 2.0 * size * size * size / (ms * 1e-3) / 1e12;
    }

    /// <summary>GB/s of a 1 GiB copy (64 MiB on the CPU), counting bytes read plus bytes written.</summary>
    public static double CopyGBps(DeviceTimer timer, ScalarType dtype)
    {
        long bytes = timer.IsCuda ? 1L << 30 : 1L << 26;
        using var scope = NewDisposeScope();
        var src = randn([bytes / DTypeNames.ElementSize(dtype)], dtype, timer.Device);
        var dst = empty_like(src);
        double ms = timer.MedianMs(_ => dst.copy_(src));
        return 2.0 * bytes / (ms * 1e-3) / 1e9;
    }
}
