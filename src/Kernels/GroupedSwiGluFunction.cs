using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The grouped SwiGLU MLP as a TorchSharp autograd function, so the fast forward and explicit backward
/// compose with other modules, losses and torch.optim:
/// <code>var y = GroupedSwiGluFunction.Apply(x, wGateUp, wDown); loss(y).backward();</code>
/// </summary>
public sealed class GroupedSwiGluFunction : autograd.SingleTensorFunction<GroupedSwiGluFunction>
{
    /// <summary>The name autograd shows for this function's nodes.</summary>
    public override string Name => nameof(GroupedSwiGluFunction);

    /// <summary>The MLP's output (x's layout) for x (B, N, D_in) or (B*N, D_in), wGateUp (N, D_in, 2H), wDown (N, H, D_out).</summary>
    public static Tensor Apply(Tensor x, Tensor wGateUp, Tensor wDown) =>
        apply(x, wGateUp, wDown);

    /// <summary>Autograd's entry: vars are x, wGateUp and wDown as in <see cref="Apply"/>.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, wGateUp, wDown) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var output = GroupedSwiGluMlp.Forward(x, wGateUp, wDown, out var saved);
        // The context takes the tensors themselves after forward returns, so they must stay undisposed
        // here; they belong to the caller's dispose scope like any other op result.
        ctx.save_for_backward([x, wGateUp, wDown, saved.GateUp, saved.Hidden]);
        saved.X.Dispose();   // only our (B, N, D_in) alias of x
        return output;
    }

    /// <summary>Autograd's entry: dX (x's layout), dW_gate_up (N, D_in, 2H) and dW_down (N, H, D_out) for dOut.</summary>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var s = ctx.get_saved_variables();
        var (x, wGateUp, wDown) = (s[0], s[1], s[2]);
        using var x3 = GroupedShapes.AsGrouped(x, wGateUp.shape[0], wGateUp.shape[1]);
        using var saved = new SwiGluSaved { X = x3.alias(), GateUp = s[3].alias(), Hidden = s[4].alias() };
        using var dOut = gradOutput.contiguous();   // a loss such as y.sum() hands back an expanded (stride 0) gradient
        var grads = GroupedSwiGluMlp.Backward(saved, wGateUp, wDown, dOut);   // dOut has x's layout
        return [grads.DX, grads.DGateUp, grads.DDown];
    }
}
