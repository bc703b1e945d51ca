using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// Grouped linear layer without bias: y[:, n, :] = x[:, n, :] @ W[n].
/// x (B, N, D_in) or (B*N, D_in), W (N, D_in, D_out), y (B, N, D_out) in the same rank as x.
/// Each pass is one strided batched GEMM over the groups (see <see cref="BatchedMatmul"/>).
/// </summary>
public static class GroupedLinear
{
    /// <summary>y = x @ W per group, a new tensor in x's layout. checkFinite first refuses an x with NaN or Inf (a device sync).</summary>
    public static Tensor Forward(Tensor x, Tensor w, bool checkFinite = false)
    {
        GroupedShapes.CheckWeight(w, nameof(w));
        GroupedShapes.CheckSameKind((x, nameof(x)), (w, nameof(w)));
        using var x3 = GroupedShapes.AsGrouped(x, w.shape[0], w.shape[1]);   // (B, N, D_in)
        if (checkFinite) GroupedShapes.CheckFinite(x, nameof(x));

        long batch = x3.shape[0], groups = w.shape[0], dOut = w.shape[2];
        var y = empty(new[] { batch, groups, dOut }, x.dtype, x.device);     // (B, N, D_out)
        using (var yg = y.permute(1, 0, 2))                                    // (N, B, D_out) view
        using (var xg = x3.permute(1, 0, 2))                                   // (N, B, D_in) view
            BatchedMatmul.Into(yg, xg, w);
        return x.dim() == 2 ? Flatten(y) : y;
    }

    /// <summary>Gradients of Forward: dX (same layout as x) and dW (N, D_in, D_out).</summary>
    public static (Tensor DX, Tensor DW) Backward(Tensor x, Tensor w, Tensor dy, bool checkFinite = false)
    {
        GroupedShapes.CheckWeight(w, nameof(w));
        GroupedShapes.CheckSameKind((x, nameof(x)), (w, nameof(w)), (dy, nameof(dy)));
        using var x3 = GroupedShapes.AsGrouped(x, w.shape[0], w.shape[1]);     // (B, N, D_in)
        using var dy3 = GroupedShapes.AsGrouped(dy, w.shape[0], w.shape[2], nameof(dy)); // (B, N, D_out)
        if (dy3.shape[0] != x3.shape[0])
            throw new ArgumentException($"dy has batch {dy3.shape[0]} but x has batch {x3.shape[0]}.", nameof(dy));
        if (checkFinite) GroupedShapes.CheckFinite(dy, nameof(dy));

        var dx = empty_like(x3);                                                 // (B, N, D_in)
        var dw = empty_like(w);                                                  // (N, D_in, D_out)
        using (var dxg = dx.permute(1, 0, 2))
        using (var dyg = dy3.permute(1, 0, 2))
        using (var xg = x3.permute(1, 0, 2))
        using (var wt = w.transpose(1, 2))
        using (var xgt = xg.transpose(1, 2))
        {
            BatchedMatmul.Into(dxg, dyg, wt);   // dX_n = dY_n @ W_n^T   (B, D_out) @ (D_out, D_in)
            BatchedMatmul.Into(dw, xgt, dyg);   // dW_n = X_n^T @ dY_n   (D_in, B) @ (B, D_out)
        }
        return (x.dim() == 2 ? Flatten(dx) : dx, dw);
    }

    static Tensor Flatten(Tensor t)
    {
        var flat = t.view(t.shape[0] * t.shape[1], t.shape[2]);
        t.Dispose();
        return flat;
    }
}
