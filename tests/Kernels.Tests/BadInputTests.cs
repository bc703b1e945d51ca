using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

/// <summary>Every bad input gets an error that names the argument and what is wrong with it.</summary>
public class BadInputTests
{
    readonly Check check = new();

    Tensor R(params long[] shape) => check.Randn(shape, ScalarType.Float32);

    [Fact]
    public void Wrong_group_count_names_dim_1()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(R(4, 3, 8), R(2, 8, 5)));
        Assert.Contains("x has 3 groups in dim 1 but the weights have 2", e.Message);
    }

    [Fact]
    public void Wrong_feature_count_names_dim_2()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(R(4, 2, 7), R(2, 8, 5)));
        Assert.Contains("x has 7 features in dim 2 but the weights expect 8", e.Message);
    }

    [Fact]
    public void Flattened_rows_must_divide_into_groups()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(R(7, 8), R(2, 8, 5)));
        Assert.Contains("7 rows in dim 0, not a multiple of the 2 groups", e.Message);
    }

    [Fact]
    public void Weight_rank_is_checked()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(R(4, 2, 8), R(8, 5)));
        Assert.Contains("w must be (N, D_in, D_out); got 2 dims", e.Message);
    }

    [Fact]
    public void Down_projection_must_take_H_rows()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedSwiGluMlp.Forward(R(4, 2, 8), R(2, 8, 12), R(2, 5, 3)));
        Assert.Contains("wDown has 5 rows in dim 1, expected 6", e.Message);
    }

    [Fact]
    public void Gate_up_width_must_be_even()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedSwiGluMlp.Forward(R(4, 2, 8), R(2, 8, 7), R(2, 3, 3)));
        Assert.Contains("wGateUp's dim 2 must be 2H", e.Message);
    }

    [Fact]
    public void Mixed_dtypes_are_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(R(4, 2, 8), R(2, 8, 5).to(ScalarType.Float64)));
        Assert.Contains("w has dtype Float64 but x has Float32", e.Message);
    }

    [Fact]
    public void Integer_tensors_are_rejected()
    {
        using var x = ones(new long[] { 4, 2, 8 }, ScalarType.Int32);
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Forward(x, R(2, 8, 5)));
        Assert.Contains("x has dtype Int32", e.Message);
    }

    [Fact]
    public void Backward_batch_mismatch_is_named()
    {
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Backward(R(4, 2, 8), R(2, 8, 5), R(3, 2, 5)));
        Assert.Contains("dy has batch 3 but x has batch 4", e.Message);
    }

    [Fact]
    public void Non_finite_inputs_are_reported_when_checks_are_on()
    {
        var x = R(4, 2, 8);
        x[1, 0, 3] = tensor(float.NaN);
        x[2, 1, 0] = tensor(float.PositiveInfinity);
        var e = Assert.Throws<ArgumentException>(() => GroupedSwiGluMlp.Forward(x, R(2, 8, 12), R(2, 6, 3), checkFinite: true));
        Assert.Contains("x contains 2 non-finite values", e.Message);
    }

    [Fact]
    public void Non_finite_gradients_are_reported_when_checks_are_on()
    {
        var dy = R(4, 2, 5);
        dy[0, 0, 0] = tensor(float.NaN);
        var e = Assert.Throws<ArgumentException>(() => GroupedLinear.Backward(R(4, 2, 8), R(2, 8, 5), dy, checkFinite: true));
        Assert.Contains("dy contains 1 non-finite values", e.Message);
    }
}
