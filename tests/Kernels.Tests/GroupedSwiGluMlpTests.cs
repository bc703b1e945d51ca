using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

public class GroupedSwiGluMlpTests
{
    public static TheoryData<long, long, long, long, long, ScalarType> Shapes => new()
    {
        { 6, 1, 5, 3, 4, ScalarType.Float64 },      // one group
        { 13, 4, 17, 11, 9, ScalarType.Float64 },   // odd sizes, B not a multiple of 8
        { 16, 12, 32, 48, 32, ScalarType.Float64 },
        { 13, 4, 17, 11, 9, ScalarType.Float32 },
        { 40, 3, 64, 96, 64, ScalarType.Float32 },
    };

    sealed record Case(Tensor X, Tensor WGateUp, Tensor WDown, Tensor DOut);

    static Case Make(Check check, long b, long n, long dIn, long h, long dOut, ScalarType dtype, bool requiresGrad) => new(
        check.Randn([b, n, dIn], dtype, requiresGrad: requiresGrad),
        check.Randn([n, dIn, 2 * h], dtype, 1 / Math.Sqrt(dIn), requiresGrad),
        check.Randn([n, h, dOut], dtype, 1 / Math.Sqrt(h), requiresGrad),
        check.Randn([b, n, dOut], dtype));

    [Theory, MemberData(nameof(Shapes))]
    public void Forward_and_explicit_backward_match_the_loop_reference(long b, long n, long dIn, long h, long dOut, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var c = Make(check, b, n, dIn, h, dOut, dtype, requiresGrad: true);
        var reference = LoopReference.SwiGluMlp(c.X, c.WGateUp, c.WDown);
        reference.backward([c.DOut]);

        using var noGrad = no_grad();
        var output = GroupedSwiGluMlp.Forward(c.X, c.WGateUp, c.WDown, out var saved);
        using var grads = GroupedSwiGluMlp.Backward(saved, c.WGateUp, c.WDown, c.DOut);
        saved.Dispose();
        double tol = Check.ToleranceFor(dtype);
        check.Close(output, reference, tol, "output");
        check.Close(grads.DX, c.X.grad!, tol, "dX");
        check.Close(grads.DGateUp, c.WGateUp.grad!, tol, "dW_gate_up");
        check.Close(grads.DDown, c.WDown.grad!, tol, "dW_down");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Autograd_function_gives_the_explicit_backward_gradients(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var c = Make(check, 9, 3, 8, 6, 5, dtype, requiresGrad: true);
        var output = GroupedSwiGluFunction.Apply(c.X, c.WGateUp, c.WDown);
        output.backward([c.DOut]);

        using var noGrad = no_grad();
        var explicitOutput = GroupedSwiGluMlp.Forward(c.X, c.WGateUp, c.WDown, out var saved);
        using var grads = GroupedSwiGluMlp.Backward(saved, c.WGateUp, c.WDown, c.DOut);
        saved.Dispose();
        double tol = dtype == ScalarType.Float64 ? 1e-12 : 1e-6;
        check.Close(output, explicitOutput, tol, "output");
        check.Close(c.X.grad!, grads.DX, tol, "dX");
        check.Close(c.WGateUp.grad!, grads.DGateUp, tol, "dW_gate_up");
        check.Close(c.WDown.grad!, grads.DDown, tol, "dW_down");
    }

    [Fact]
    public void Autograd_function_composes_with_a_loss_and_an_optimizer()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var c = Make(check, 32, 2, 8, 8, 4, ScalarType.Float64, requiresGrad: false);
        var wGateUp = new TorchSharp.Modules.Parameter(c.WGateUp);
        var wDown = new TorchSharp.Modules.Parameter(c.WDown);
        var optimizer = optim.Adam([wGateUp, wDown], 1e-2);
        var target = check.Randn([32, 2, 4], ScalarType.Float64);
        double first = 0, last = 0;
        for (int step = 0; step < 50; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(GroupedSwiGluFunction.Apply(c.X, wGateUp, wDown), target);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<double>();
            last = loss.item<double>();
        }
        Assert.True(last < first * 0.8, $"loss went from {first} to {last}");
    }

    [Fact]
    public void Flattened_input_matches_grouped_input()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var c = Make(check, 7, 3, 5, 4, 6, ScalarType.Float64, requiresGrad: false);
        var flat = GroupedSwiGluMlp.Forward(c.X.reshape(21, 5), c.WGateUp, c.WDown, out var saved);
        using var grads = GroupedSwiGluMlp.Backward(saved, c.WGateUp, c.WDown, c.DOut.reshape(21, 6));
        saved.Dispose();
        Assert.Equal([21L, 6], flat.shape);
        Assert.Equal([21L, 5], grads.DX.shape);
        check.Close(flat.view(7, 3, 6), LoopReference.SwiGluMlp(c.X, c.WGateUp, c.WDown), 1e-10, "flattened output");
    }

    [Fact]
    public void Bfloat16_forward_is_close_to_a_float64_reference()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var c = Make(check, 24, 4, 64, 48, 32, ScalarType.Float64, requiresGrad: false);
        var output = GroupedSwiGluMlp.Forward(c.X.to(ScalarType.BFloat16), c.WGateUp.to(ScalarType.BFloat16), c.WDown.to(ScalarType.BFloat16));
        check.Close(output, LoopReference.SwiGluMlp(c.X, c.WGateUp, c.WDown), 1e-2, "bf16 output");
    }
}
