using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The grouped linear layer as a TorchSharp autograd function, so its one-GEMM forward and explicit two-GEMM
/// backward compose with other modules, losses and torch.optim:
/// <code>var y = GroupedLinearFunction.Apply(x, w); loss(y).backward();</code>
/// </summary>
public sealed class GroupedLinearFunction : autograd.SingleTensorFunction<GroupedLinearFunction>
{
    /// <summary>The name autograd shows for this function's nodes.</summary>
    public override string Name => nameof(GroupedLinearFunction);

    /// <summary>y = x @ W per group. x (B, N, D_in) or (B*N, D_in), w (N, D_in, D_out); y has x's rank.</summary>
    public static Tensor Apply(Tensor x, Tensor w) => apply(x, w);

    /// <summary>Autograd's entry: vars are x and w as in <see cref="Apply"/>.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, w) = ((Tensor)vars[0], (Tensor)vars[1]);
        var y = GroupedLinear.Forward(x, w);
        ctx.save_for_backward([x, w]);
        return y;
    }

    /// <summary>Autograd's entry: dX (x's layout) and dW (N, D_in, D_out) for dY (y's layout).</summary>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var s = ctx.get_saved_variables();
        using var dy = gradOutput.contiguous();   // a loss such as y.sum() hands back an expanded (stride 0) gradient
        var (dx, dw) = GroupedLinear.Backward(s[0], s[1], dy);
        return [dx, dw];
    }
}
