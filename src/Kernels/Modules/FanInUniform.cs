using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Modules;

/// <summary>
/// nn.Linear's initialisation for one group's projection stacked over the groups: every value uniform in
/// ±1/√fan_in, which is what kaiming_uniform_(a = √5) and nn.Linear's bias rule both come to. torch's own
/// init helpers would take fan_in of an (N, D_in, D_out) tensor as D_in·D_out, so the bound is given here.
/// Values are drawn in float64 on the CPU, then cast and moved: one generator state gives the same weights
/// (up to rounding) on every device and in every dtype.
/// </summary>
static class FanInUniform
{
    public static Parameter Create(long[] shape, long fanIn, Device device, ScalarType dtype, Generator? generator)
    {
        using var scope = NewDisposeScope();
        double bound = 1 / Math.Sqrt(fanIn);
        var values = empty(shape, ScalarType.Float64).uniform_(-bound, bound, generator);
        var parameter = new Parameter(values.to(dtype, device));
        return (Parameter)parameter.DetachFromDisposeScope();   // owned by the module, not by the caller's scope
    }

    /// <summary>Sizes must be positive: a zero-width layer has no fan-in to scale by.</summary>
    public static void CheckSize(long size, string name)
    {
        if (size <= 0)
            throw new ArgumentOutOfRangeException(name, size, $"{name} must be positive; got {size}.");
    }
}
