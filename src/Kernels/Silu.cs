using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The derivative of SiLU for the CPU and float64 paths: silu'(z) = s (1 + z (1 - s)), s = sigmoid(z). The trunk's
/// backward and the SwiGLU gate's both use it; on CUDA the fused kernels compute the same formula (silu.cu, swiglu.cu).
/// </summary>
public static class Silu
{
    /// <summary>silu'(z), elementwise, in z's shape and dtype.</summary>
    public static Tensor Derivative(Tensor z)
    {
        using var scope = NewDisposeScope();
        var s = sigmoid(z);
        return s.mul(z.mul(s.neg().add_(1)).add_(1)).MoveToOuterDisposeScope();
    }
}
