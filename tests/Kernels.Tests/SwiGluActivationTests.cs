using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

public class SwiGluActivationTests
{
    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Backward_matches_autograd_of_silu_gate_times_up(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var gateUp = check.Randn([5, 3, 2 * 7], dtype, 2.0, requiresGrad: true);
        var dHidden = check.Randn([5, 3, 7], dtype);
        var reference = nn.functional.silu(gateUp.narrow(-1, 0, 7)) * gateUp.narrow(-1, 7, 7);
        reference.backward([dHidden]);

        using var noGrad = no_grad();
        double tol = Check.ToleranceFor(dtype);
        check.Close(SwiGluActivation.Forward(gateUp), reference, tol, "hidden");
        check.Close(SwiGluActivation.Backward(gateUp, dHidden), gateUp.grad!, tol, "dGateUp");
    }

    [Fact]
    public void Odd_last_dimension_is_rejected()
    {
        using var gateUp = randn(4, 5);
        var e = Assert.Throws<ArgumentException>(() => SwiGluActivation.Forward(gateUp));
        Assert.Contains("even dim 2H", e.Message);
    }
}
