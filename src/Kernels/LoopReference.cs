using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels;

/// <summary>
/// The obvious implementation: a loop over the groups with one matmul each, differentiated by TorchSharp
/// autograd. Slow on purpose; every fast path is checked against it.
/// </summary>
public static class LoopReference
{
    /// <summary>x (B, N, D_in), w (N, D_in, D_out) -> (B, N, D_out).</summary>
    public static Tensor GroupedLinear(Tensor x, Tensor w)
    {
        using var scope = NewDisposeScope();
        var perGroup = new List<Tensor>();
        for (long n = 0; n < w.shape[0]; n++)
            perGroup.Add(matmul(x.select(1, n), w[n]));           // (B, D_out)
        return stack(perGroup, 1).MoveToOuterDisposeScope();     // (B, N, D_out)
    }

    /// <summary>x (B, N, D_in), wGateUp (N, D_in, 2H), wDown (N, H, D_out) -> (B, N, D_out).</summary>
    public static Tensor SwiGluMlp(Tensor x, Tensor wGateUp, Tensor wDown)
    {
        using var scope = NewDisposeScope();
        long hidden = wDown.shape[1];
        var perGroup = new List<Tensor>();
        for (long n = 0; n < wGateUp.shape[0]; n++)
        {
            var gateUp = matmul(x.select(1, n), wGateUp[n]);      // (B, 2H)
            var gate = gateUp.narrow(1, 0, hidden);               // (B, H)
            var up = gateUp.narrow(1, hidden, hidden);            // (B, H)
            perGroup.Add(matmul(nn.functional.silu(gate) * up, wDown[n]));  // (B, D_out)
        }
        return stack(perGroup, 1).MoveToOuterDisposeScope();
    }
}
