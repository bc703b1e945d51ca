using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>What the SwiGLU forward keeps for its backward. Owns its tensors.</summary>
public sealed class SwiGluSaved : IDisposable
{
    /// <summary>(B, N, D_in): the input, as given (not copied).</summary>
    public required Tensor X { get; init; }
    /// <summary>(B, N, 2H): x @ wGateUp, gate then up.</summary>
    public required Tensor GateUp { get; init; }
    /// <summary>(B, N, H): silu(gate) * up.</summary>
    public required Tensor Hidden { get; init; }
    /// <summary>Disposes the three tensors.</summary>
    public void Dispose() { X.Dispose(); GateUp.Dispose(); Hidden.Dispose(); }
}

/// <summary>Gradients of the grouped SwiGLU MLP. Owns its tensors.</summary>
public sealed class SwiGluGradients : IDisposable
{
    /// <summary>The input's gradient, in x's layout.</summary>
    public required Tensor DX { get; init; }
    /// <summary>(N, D_in, 2H): wGateUp's gradient.</summary>
    public required Tensor DGateUp { get; init; }
    /// <summary>(N, H, D_out): wDown's gradient.</summary>
    public required Tensor DDown { get; init; }
    /// <summary>Disposes the three tensors.</summary>
    public void Dispose() { DX.Dispose(); DGateUp.Dispose(); DDown.Dispose(); }
}

/// <summary>
/// Grouped SwiGLU MLP: out[:, n] = (silu(x[:, n] @ Wg[n]) * (x[:, n] @ Wu[n])) @ Wd[n].
/// Gate and up are stored fused as wGateUp (N, D_in, 2H) = [Wg | Wu] so the input projection is ONE
/// batched GEMM; wDown is (N, H, D_out). x is (B, N, D_in) or (B*N, D_in); out has x's rank.
///
/// Forward:  gateUp = x @ wGateUp           (B, N, 2H)   GEMM
///           hidden = silu(g) * u           (B, N, H)    fused kernel
///           out    = hidden @ wDown        (B, N, D_out) GEMM
/// Backward: dDown   = hiddenᵀ @ dOut       GEMM
///           dHidden = dOut @ wDownᵀ        GEMM
///           dGateUp = swiglu'(gateUp, dHidden)           fused kernel
///           dWgu    = xᵀ @ dGateUp         GEMM
///           dX      = dGateUp @ wGateUpᵀ   GEMM
/// </summary>
public static class GroupedSwiGluMlp
{
    /// <summary>Forward for inference: nothing is kept.</summary>
    public static Tensor Forward(Tensor x, Tensor wGateUp, Tensor wDown, bool checkFinite = false)
    {
        var output = Forward(x, wGateUp, wDown, out var saved, checkFinite);
        saved.Dispose();
        return output;
    }

    /// <summary>Forward for training: <paramref name="saved"/> holds what <see cref="Backward"/> needs.</summary>
    public static Tensor Forward(Tensor x, Tensor wGateUp, Tensor wDown, out SwiGluSaved saved, bool checkFinite = false)
    {
        CheckWeights(wGateUp, wDown);
        GroupedShapes.CheckSameKind((x, nameof(x)), (wGateUp, nameof(wGateUp)), (wDown, nameof(wDown)));
        var x3 = GroupedShapes.AsGrouped(x, wGateUp.shape[0], wGateUp.shape[1]);      // (B, N, D_in)
        if (checkFinite) GroupedShapes.CheckFinite(x, nameof(x));

        var gateUp = GroupedLinear.Forward(x3, wGateUp);                                // (B, N, 2H)
        var hidden = SwiGluActivation.Forward(gateUp);                                  // (B, N, H)
        var output = GroupedLinear.Forward(hidden, wDown);                              // (B, N, D_out)
        saved = new SwiGluSaved { X = x3, GateUp = gateUp, Hidden = hidden };
        if (x.dim() == 2)
        {
            var flat = output.view(output.shape[0] * output.shape[1], output.shape[2]);
            output.Dispose();
            return flat;
        }
        return output;
    }

    /// <summary>Gradients for dOut (same layout as the forward's output).</summary>
    public static SwiGluGradients Backward(SwiGluSaved saved, Tensor wGateUp, Tensor wDown, Tensor dOut, bool checkFinite = false)
    {
        CheckWeights(wGateUp, wDown);
        GroupedShapes.CheckSameKind((saved.X, "x"), (wGateUp, nameof(wGateUp)), (wDown, nameof(wDown)), (dOut, nameof(dOut)));
        using var dOut3 = GroupedShapes.AsGrouped(dOut, wDown.shape[0], wDown.shape[2], nameof(dOut)); // (B, N, D_out)
        if (dOut3.shape[0] != saved.X.shape[0])
            throw new ArgumentException($"dOut has batch {dOut3.shape[0]} but the forward had batch {saved.X.shape[0]}.", nameof(dOut));
        if (checkFinite) GroupedShapes.CheckFinite(dOut, nameof(dOut));

        var (dHidden, dDown) = GroupedLinear.Backward(saved.Hidden, wDown, dOut3);    // (B, N, H), (N, H, D_out)
        using (dHidden)
        {
            using var dGateUpAct = SwiGluActivation.Backward(saved.GateUp, dHidden);   // (B, N, 2H)
            var (dX, dGateUp) = GroupedLinear.Backward(saved.X, wGateUp, dGateUpAct);  // (B, N, D_in), (N, D_in, 2H)
            if (dOut.dim() == 2)
            {
                var flat = dX.view(dX.shape[0] * dX.shape[1], dX.shape[2]);
                dX.Dispose();
                dX = flat;
            }
            return new SwiGluGradients { DX = dX, DGateUp = dGateUp, DDown = dDown };
        }
    }

    static void CheckWeights(Tensor wGateUp, Tensor wDown)
    {
        GroupedShapes.CheckWeight(wGateUp, nameof(wGateUp));
        if (wGateUp.shape[2] % 2 != 0)
            throw new ArgumentException($"wGateUp's dim 2 must be 2H (gate and up side by side); got {wGateUp.shape[2]}.", nameof(wGateUp));
        GroupedShapes.CheckWeight(wDown, nameof(wDown), groups: wGateUp.shape[0], rows: wGateUp.shape[2] / 2);
    }
}
