using TorchSharp;
using static TorchSharp.torch;
using LinearModule = Orchestrator.Kernels.Modules.GroupedLinear;

namespace Orchestrator.Kernels.Tests;

public class GroupedLinearModuleTests
{
    public static TheoryData<long, long, long, long, bool> Shapes => new()
    {
        { 5, 1, 3, 7, true },      // one group
        { 13, 4, 17, 9, true },    // odd sizes, B not a multiple of 8
        { 13, 4, 17, 9, false },   // no bias
        { 8, 12, 16, 24, true },
    };

    static LinearModule Make(Check check, long n, long dIn, long dOut, bool hasBias = true) =>
        new(n, dIn, dOut, hasBias, dtype: ScalarType.Float64, generator: new Generator((ulong)check.Seed + 1));

    [Theory, MemberData(nameof(Shapes))]
    public void Forward_and_parameter_gradients_match_the_loop_reference(long b, long n, long dIn, long dOut, bool hasBias)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        using var layer = Make(check, n, dIn, dOut, hasBias);
        var x = check.Randn([b, n, dIn], ScalarType.Float64, requiresGrad: true);
        var dy = check.Randn([b, n, dOut], ScalarType.Float64);
        ModuleChecks.MatchesReference(layer, check, x, dy, (xRef, p) =>
            hasBias ? LoopReference.GroupedLinear(xRef, p[0]) + p[1] : LoopReference.GroupedLinear(xRef, p[0]));
    }

    [Fact]
    public void Parameters_are_registered_by_name_and_shape()
    {
        using var withBias = new LinearModule(3, 5, 4);
        using var withoutBias = new LinearModule(3, 5, 4, hasBias: false);
        Assert.Equal(["weight (3, 5, 4)", "bias (3, 4)"], ModuleChecks.Described(withBias));
        Assert.Equal(["weight (3, 5, 4)"], ModuleChecks.Described(withoutBias));
        Assert.All(withBias.parameters(), p => Assert.True(p.requires_grad));
        Assert.Equal((3L, 5L, 4L), (withBias.Groups, withBias.InFeatures, withBias.OutFeatures));
        Assert.Null(withoutBias.Bias);
    }

    [Fact]
    public void State_dict_and_files_round_trip()
    {
        var check = new Check();
        using var x = check.Randn([6, 3, 5], ScalarType.Float64);
        ModuleChecks.StateRoundTrips(g => new LinearModule(3, 5, 4, dtype: ScalarType.Float64, generator: g), check, x);
    }

    [Fact]
    public void To_float32_converts_every_parameter()
    {
        var check = new Check();
        using var layer = Make(check, 4, 9, 5);
        using var x = check.Randn([7, 4, 9], ScalarType.Float64);
        ModuleChecks.ConvertsToFloat32(layer, check, x, () => layer.Weight);
        Assert.Equal(ScalarType.Float32, layer.Bias!.dtype);
    }

    [Fact]
    public void Initialised_like_nn_Linear_and_reproducible_from_the_generator()
    {
        var check = new Check();
        using var layer64 = Make(check, 16, 64, 512);   // 8192 biases: their std is within 5% by 10 standard errors
        using var layer32 = new LinearModule(16, 64, 512, dtype: ScalarType.Float32, generator: new Generator((ulong)check.Seed + 1));
        ModuleChecks.InitialisedLikeLinear(layer64.Weight, layer32.Weight, 64, "weight");
        ModuleChecks.InitialisedLikeLinear(layer64.Bias!, layer32.Bias!, 64, "bias");
    }

    [Fact]
    public void Bad_input_and_sizes_are_refused_by_name()
    {
        var check = new Check();
        using var layer = Make(check, 3, 5, 4);
        using var flat = check.Randn([6, 5], ScalarType.Float64);
        var e = Assert.Throws<ArgumentException>(() => layer.call(flat));
        Assert.Contains("GroupedLinear takes input (B, N, D_in); got 2 dims (6, 5)", e.Message);
        using var wrongGroups = check.Randn([2, 4, 5], ScalarType.Float64);
        Assert.Contains("4 groups in dim 1 but the weights have 3", Assert.Throws<ArgumentException>(() => layer.call(wrongGroups)).Message);
        Assert.Equal("outFeatures", Assert.Throws<ArgumentOutOfRangeException>(() => new LinearModule(3, 5, 0)).ParamName);
    }
}
