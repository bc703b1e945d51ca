using TorchSharp;
using static TorchSharp.torch;
using SwiGluModule = Orchestrator.Kernels.Modules.GroupedSwiGluMlp;

namespace Orchestrator.Kernels.Tests;

public class GroupedSwiGluMlpModuleTests
{
    public static TheoryData<long, long, long, long, long> Shapes => new()
    {
        { 6, 1, 5, 3, 4 },       // one group
        { 13, 4, 17, 11, 9 },    // odd sizes, B not a multiple of 8
        { 16, 12, 32, 48, 32 },
    };

    static SwiGluModule Make(Check check, long n, long dIn, long h, long dOut, ScalarType dtype = ScalarType.Float64) =>
        new(n, dIn, h, dOut, dtype: dtype, generator: new Generator((ulong)check.Seed + 1));

    [Theory, MemberData(nameof(Shapes))]
    public void Forward_and_parameter_gradients_match_the_loop_reference(long b, long n, long dIn, long h, long dOut)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        using var mlp = Make(check, n, dIn, h, dOut);
        var x = check.Randn([b, n, dIn], ScalarType.Float64, requiresGrad: true);
        var dOutput = check.Randn([b, n, dOut], ScalarType.Float64);
        ModuleChecks.MatchesReference(mlp, check, x, dOutput, (xRef, p) => LoopReference.SwiGluMlp(xRef, p[0], p[1]));
    }

    [Fact]
    public void Parameters_are_registered_by_name_and_shape_also_inside_a_model()
    {
        using var mlp = new SwiGluModule(3, 5, 7, 2);
        Assert.Equal(["w_gate_up (3, 5, 14)", "w_down (3, 7, 2)"], ModuleChecks.Described(mlp));
        Assert.Equal((3L, 5L, 7L, 2L), (mlp.Groups, mlp.InFeatures, mlp.HiddenFeatures, mlp.OutFeatures));

        using var model = nn.Sequential(("trunk", nn.Linear(4, 15)), ("split", nn.Unflatten(1, [3, 5])), ("towers", mlp));
        Assert.Equal(["trunk.weight (15, 4)", "trunk.bias (15)", "towers.w_gate_up (3, 5, 14)", "towers.w_down (3, 7, 2)"],
                     ModuleChecks.Described(model));
    }

    [Fact]
    public void State_dict_and_files_round_trip()
    {
        var check = new Check();
        using var x = check.Randn([6, 3, 5], ScalarType.Float64);
        ModuleChecks.StateRoundTrips(g => new SwiGluModule(3, 5, 7, 4, dtype: ScalarType.Float64, generator: g), check, x);
    }

    [Fact]
    public void To_float32_converts_every_parameter()
    {
        var check = new Check();
        using var mlp = Make(check, 4, 9, 6, 5);
        using var x = check.Randn([7, 4, 9], ScalarType.Float64);
        ModuleChecks.ConvertsToFloat32(mlp, check, x, () => mlp.GateUpWeight);
        Assert.Equal(ScalarType.Float32, mlp.DownWeight.dtype);
    }

    [Fact]
    public void Initialised_like_nn_Linear_per_projection_and_reproducible_from_the_generator()
    {
        var check = new Check();
        using var mlp64 = Make(check, 4, 64, 96, 48);
        using var mlp32 = Make(check, 4, 64, 96, 48, ScalarType.Float32);
        ModuleChecks.InitialisedLikeLinear(mlp64.GateUpWeight, mlp32.GateUpWeight, 64, "w_gate_up");
        ModuleChecks.InitialisedLikeLinear(mlp64.DownWeight, mlp32.DownWeight, 96, "w_down");
    }

    [Fact]
    public void Bad_input_and_sizes_are_refused_by_name()
    {
        var check = new Check();
        using var mlp = Make(check, 3, 5, 4, 2);
        using var flat = check.Randn([6, 5], ScalarType.Float64);
        Assert.Contains("GroupedSwiGluMlp takes input (B, N, D_in); got 2 dims (6, 5)", Assert.Throws<ArgumentException>(() => mlp.call(flat)).Message);
        using var wrongWidth = check.Randn([2, 3, 6], ScalarType.Float64);
        Assert.Contains("6 features in dim 2 but the weights expect 5", Assert.Throws<ArgumentException>(() => mlp.call(wrongWidth)).Message);
        using var float32 = check.Randn([2, 3, 5], ScalarType.Float32);
        Assert.Contains("dtype", Assert.Throws<ArgumentException>(() => mlp.call(float32)).Message);
        Assert.Equal("hiddenFeatures", Assert.Throws<ArgumentOutOfRangeException>(() => new SwiGluModule(3, 5, 0, 2)).ParamName);
    }
}
