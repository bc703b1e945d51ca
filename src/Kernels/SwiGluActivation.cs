using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The gated activation of the SwiGLU MLP on the fused gate+up projection.
/// gateUp (..., 2H) holds gate g in [..., :H] and up u in [..., H:]; hidden h = silu(g) * u is (..., H).
/// On CUDA both directions are one fused NVRTC kernel each (one read of every input, one write of every
/// output); on the CPU (and for float64) they are the same formulas in TorchSharp ops.
/// </summary>
public static class SwiGluActivation
{
    /// <summary>h = silu(g) * u. gateUp (..., 2H) -> h (..., H).</summary>
    public static Tensor Forward(Tensor gateUp)
    {
        long hiddenSize = HalfOfLastDim(gateUp);
        var shape = gateUp.shape.ToArray();
        shape[^1] = hiddenSize;
        var hidden = empty(shape, gateUp.dtype, gateUp.device);
        if (UseFusedKernel(gateUp))
        {
            Cuda.FusedSwiGlu.Forward(gateUp, hidden);
            return hidden;
        }
        using var scope = NewDisposeScope();
        var (g, u) = Split(gateUp, hiddenSize);
        hidden.copy_(nn.functional.silu(g) * u);
        return hidden;
    }

    /// <summary>
    /// From gateUp (..., 2H) and dHidden (..., H): dGateUp (..., 2H) with
    /// dg = dh * u * silu'(g) where silu'(g) = s * (1 + g * (1 - s)), s = sigmoid(g), and du = dh * silu(g).
    /// </summary>
    public static Tensor Backward(Tensor gateUp, Tensor dHidden)
    {
        long hiddenSize = HalfOfLastDim(gateUp);
        if (!dHidden.shape.SkipLast(1).SequenceEqual(gateUp.shape.SkipLast(1)) || dHidden.shape[^1] != hiddenSize)
            throw new ArgumentException($"dHidden {GroupedShapes.Show(dHidden)} does not match gateUp {GroupedShapes.Show(gateUp)} (expected last dim {hiddenSize}).", nameof(dHidden));
        GroupedShapes.CheckSameKind((gateUp, nameof(gateUp)), (dHidden, nameof(dHidden)));
        var dGateUp = empty_like(gateUp);
        if (UseFusedKernel(gateUp))
        {
            Cuda.FusedSwiGlu.Backward(gateUp, dHidden, dGateUp);
            return dGateUp;
        }
        using var scope = NewDisposeScope();
        var (g, u) = Split(gateUp, hiddenSize);
        var (dg, du) = Split(dGateUp, hiddenSize);
        dg.copy_(dHidden * u * Silu.Derivative(g));
        du.copy_(dHidden * nn.functional.silu(g));
        return dGateUp;
    }

    /// <summary>The fused kernels cover the training dtypes; float64 on CUDA takes the TorchSharp path.</summary>
    static bool UseFusedKernel(Tensor t) => t.device_type == DeviceType.CUDA && t.dtype != ScalarType.Float64;

    static long HalfOfLastDim(Tensor gateUp)
    {
        if (gateUp.dim() < 1 || gateUp.shape[^1] % 2 != 0)
            throw new ArgumentException($"gateUp must end in an even dim 2H; got {GroupedShapes.Show(gateUp)}.", nameof(gateUp));
        if (!gateUp.is_contiguous())
            throw new ArgumentException("gateUp must be contiguous.", nameof(gateUp));
        return gateUp.shape[^1] / 2;
    }

    static (Tensor Gate, Tensor Up) Split(Tensor gateUp, long hiddenSize) =>
        (gateUp.narrow(-1, 0, hiddenSize), gateUp.narrow(-1, hiddenSize, hiddenSize));
}
