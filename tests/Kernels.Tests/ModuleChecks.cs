using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

/// <summary>Checks every kernel module must pass: its parameters as TorchSharp sees them, state round trips, dtype moves.</summary>
public static class ModuleChecks
{
    /// <summary>A copy of a parameter as a fresh leaf, for the reference computation's own gradients.</summary>
    public static Tensor Leaf(Tensor parameter) => parameter.detach().clone().requires_grad_(true);

    /// <summary>
    /// The module's output for x, and the gradients its backward gives x and every registered parameter for dOut,
    /// equal (float64, 1e-10) those of <paramref name="reference"/> differentiated by plain autograd on leaf copies of
    /// x and of the parameters (passed in registration order).
    /// </summary>
    public static void MatchesReference(nn.Module<Tensor, Tensor> module, Check check, Tensor x, Tensor dOut,
                                        Func<Tensor, Tensor[], Tensor> reference)
    {
        using var scope = NewDisposeScope();
        var output = module.call(x);
        output.backward([dOut]);

        var parameters = module.named_parameters().ToArray();
        var xRef = Leaf(x);
        var parametersRef = parameters.Select(p => Leaf(p.parameter)).ToArray();
        var expected = reference(xRef, parametersRef);
        expected.backward([dOut]);

        check.Close(output, expected, 1e-10, "output");
        check.Close(x.grad!, xRef.grad!, 1e-10, "dX");
        foreach (var ((name, parameter), parameterRef) in parameters.Zip(parametersRef))
            check.Close(parameter.grad!, parameterRef.grad!, 1e-10, $"d {name}");
    }

    /// <summary>Same shape and bit-for-bit the same values.</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    /// <summary>"name (shape)" of each registered parameter, in registration order.</summary>
    public static string[] Described(nn.Module module) =>
        module.named_parameters().Select(p => $"{p.name} {GroupedShapes.Show(p.parameter)}").ToArray();

    /// <summary>
    /// Two modules of different seeds differ; loading one's state_dict into the other, or saving it to a file and
    /// loading that, makes them compute the same output bit for bit.
    /// </summary>
    public static void StateRoundTrips(Func<Generator, nn.Module<Tensor, Tensor>> make, Check check, Tensor x)
    {
        using var scope = NewDisposeScope();
        using var original = make(new Generator((ulong)check.Seed + 1));
        using var other = make(new Generator((ulong)check.Seed + 2));
        using var loaded = make(new Generator((ulong)check.Seed + 3));
        using var noGrad = no_grad();
        var expected = original.call(x);
        Assert.True(Check.RelativeError(other.call(x), expected) > 1e-3, $"two seeds gave the same module (seed {check.Seed})");

        var (missing, unexpected) = other.load_state_dict(original.state_dict());
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        Assert.True(Identical(other.call(x), expected), "load_state_dict did not restore the output");

        var path = Path.Combine(Path.GetTempPath(), $"module-{Guid.NewGuid():N}.dat");
        try
        {
            original.save(path);
            loaded.load(path);
            Assert.True(Identical(loaded.call(x), expected), "save and load did not restore the output");
        }
        finally { File.Delete(path); }
    }

    /// <summary>
    /// to(float32) replaces every parameter (same names, now float32, still trainable) and the module computes in
    /// float32 what it computed in float64; backward fills float32 gradients.
    /// </summary>
    public static void ConvertsToFloat32(nn.Module<Tensor, Tensor> module, Check check, Tensor x64, Func<Tensor> parameterSeenByModule)
    {
        using var scope = NewDisposeScope();
        var names = Described(module).Select(d => d.Split(' ')[0]).ToArray();
        Tensor y64;
        using (no_grad()) y64 = module.call(x64);

        module.to(ScalarType.Float32);
        Assert.Equal(names, Described(module).Select(d => d.Split(' ')[0]));
        Assert.All(module.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(module.parameters(), p => Assert.True(p.requires_grad));
        Assert.Equal(ScalarType.Float32, parameterSeenByModule().dtype);

        var y32 = module.call(x64.to(ScalarType.Float32));
        Assert.Equal(ScalarType.Float32, y32.dtype);
        check.Close(y32, y64, 1e-5, "float32 output");
        y32.sum().backward();
        Assert.All(module.parameters(), p => Assert.Equal(ScalarType.Float32, p.grad!.dtype));
    }

    /// <summary>
    /// nn.Linear's rule: uniform in ±1/√fan_in, so the standard deviation is bound/√3. The same generator seed gives the
    /// same values in float64 and (rounded) in float32.
    /// </summary>
    public static void InitialisedLikeLinear(Tensor values64, Tensor values32, long fanIn, string what)
    {
        using var scope = NewDisposeScope();
        double bound = 1 / Math.Sqrt(fanIn);
        Assert.True(values64.abs().max().item<double>() <= bound, $"{what} exceeds ±{bound}");
        double std = values64.std().item<double>(), expectedStd = bound / Math.Sqrt(3);
        Assert.True(Math.Abs(std - expectedStd) < 0.05 * expectedStd, $"{what} has std {std}, expected {expectedStd}");
        Assert.True(Identical(values32, values64.to(ScalarType.Float32)), $"{what}: float32 init is not float64's rounded");
    }
}
