using Orchestrator.Kernels;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>The least work one phase of a step must do: GEMM floating-point operations and bytes of device memory moved.</summary>
public sealed record PhaseWork(double Flops, double Bytes)
{
    /// <summary>Milliseconds at the given ceilings: the GEMMs at the matmul rate plus the bytes at the copy rate.</summary>
    public double FloorMs(double gemmTflops, double copyGBps) => Flops / (gemmTflops * 1e9) + Bytes / (copyGBps * 1e6);
}

/// <summary>
/// The work of each <see cref="StepPhase"/> of the single-process trainer for a job's shape (B, N, D_feat = F, D_in = d,
/// H = h, D_out = m; e bytes per element, M per master element): every input read once, every output written once.
/// </summary>
public static class StepFloors
{
    /// <summary>
    /// AdamW's bytes per parameter for a job in <paramref name="dtype"/>: master, m and v read and written, the gradient
    /// read, and the working copy written when it is a tensor of its own (28 for bfloat16 and for float32).
    /// </summary>
    public static double AdamWBytesPerParameter(ScalarType dtype)
    {
        double e = DTypeNames.ElementSize(dtype), master = DTypeNames.ElementSize(MasterWeight.MasterDType(dtype));
        return 6 * master + e + (master != e ? e : 0);
    }

    public static PhaseWork Of(StepPhase phase, JobSpec spec)
    {
        var s = spec.Shape;
        var dtype = spec.DType;
        double b = spec.BatchSize, n = s.Groups, f = s.Features, d = s.Input, h = s.Hidden, m = s.Output;
        double e = DTypeNames.ElementSize(dtype), adamW = AdamWBytesPerParameter(dtype);
        double trunkParameters = f * n * d + n * d, towerParameters = n * (d * 2 * h + h * m);
        double towerFlops = 2 * b * n * (d * 2 * h + h * m), trunkFlops = 2 * b * f * n * d;
        return phase switch
        {
            StepPhase.Data => new(0, 2 * e * b * (f + n * m)),                                          // rows gathered on the device
            StepPhase.TrunkForward => new(trunkFlops, 2 * e * b * n * d),                                // addmm; silu reads and writes x
            StepPhase.TowersForward => new(towerFlops, 3 * e * b * n * h),                               // 2 GEMMs; silu(g) * u
            StepPhase.Loss => new(0, 3 * e * b * n * m + e * b * (f + n * m)),                           // MSE and dY; inputs checked once
            StepPhase.TowersBackward => new(2 * towerFlops, 5 * e * b * n * h),                          // 4 GEMMs; swiglu'
            StepPhase.TrunkBackward => new(trunkFlops, 4 * e * b * n * d + adamW * trunkParameters),     // dW; silu', db; AdamW
            StepPhase.TowersAdamW => new(0, adamW * towerParameters),
            _ => throw new ArgumentOutOfRangeException(nameof(phase), phase, null),
        };
    }
}
