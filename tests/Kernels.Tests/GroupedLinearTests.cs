using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

public class GroupedLinearTests
{
    public static TheoryData<long, long, long, long, ScalarType> Shapes => new()
    {
        { 5, 1, 3, 7, ScalarType.Float64 },     // one group
        { 13, 4, 17, 9, ScalarType.Float64 },   // odd sizes, B not a multiple of 8
        { 8, 12, 16, 24, ScalarType.Float64 },
        { 13, 4, 17, 9, ScalarType.Float32 },
        { 32, 3, 64, 48, ScalarType.Float32 },
    };

    [Theory, MemberData(nameof(Shapes))]
    public void Forward_and_gradients_match_the_loop_reference(long b, long n, long dIn, long dOut, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var x = check.Randn([b, n, dIn], dtype, requiresGrad: true);
        var w = check.Randn([n, dIn, dOut], dtype, 1 / Math.Sqrt(dIn), requiresGrad: true);
        var dy = check.Randn([b, n, dOut], dtype);

        var reference = LoopReference.GroupedLinear(x, w);
        reference.backward([dy]);

        using var noGrad = no_grad();
        var y = GroupedLinear.Forward(x, w);
        var (dx, dw) = GroupedLinear.Backward(x, w, dy);
        double tol = Check.ToleranceFor(dtype);
        check.Close(y, reference, tol, "y");
        check.Close(dx, x.grad!, tol, "dX");
        check.Close(dw, w.grad!, tol, "dW");
    }

    [Fact]
    public void Flattened_input_gives_flattened_output_and_gradients()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var x = check.Randn([7, 3, 5], ScalarType.Float64);
        var w = check.Randn([3, 5, 4], ScalarType.Float64);
        var dy = check.Randn([7, 3, 4], ScalarType.Float64);

        var y = GroupedLinear.Forward(x.reshape(21, 5), w);
        Assert.Equal([21L, 4], y.shape);
        check.Close(y.view(7, 3, 4), LoopReference.GroupedLinear(x, w), 1e-10, "flattened y");

        var (dx, dw) = GroupedLinear.Backward(x.reshape(21, 5), w, dy.reshape(21, 4));
        var (dx3, dw3) = GroupedLinear.Backward(x, w, dy);
        Assert.Equal([21L, 5], dx.shape);
        check.Close(dx.view(7, 3, 5), dx3, 1e-12, "flattened dX");
        check.Close(dw, dw3, 1e-12, "flattened dW");
    }

    [Fact]
    public void Bfloat16_forward_is_close_to_a_float64_reference()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var x = check.Randn([24, 4, 64], ScalarType.Float64);
        var w = check.Randn([4, 64, 32], ScalarType.Float64, 1 / 8.0);
        var y = GroupedLinear.Forward(x.to(ScalarType.BFloat16), w.to(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        check.Close(y, LoopReference.GroupedLinear(x, w), 1e-2, "bf16 y");
    }
}
