using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Modules;

/// <summary>
/// N independent linear layers, one per group, as a TorchSharp module: y[:, n] = x[:, n] @ weight[n] + bias[n].
/// Input x (B, N, D_in), output y (B, N, D_out). Parameters <c>weight</c> (N, D_in, D_out) and, unless
/// hasBias is false, <c>bias</c> (N, D_out), initialised as nn.Linear does for each group. Forward and
/// backward are one strided batched GEMM per product (<see cref="GroupedLinearFunction"/>): cuBLAS on CUDA,
/// torch.bmm on the CPU. Note the weight is (D_in, D_out) per group, the transpose of nn.Linear's.
/// </summary>
public sealed class GroupedLinear : nn.Module<Tensor, Tensor>
{
    // Registered under their field names; Module.to() replaces them through reflection, so not readonly.
    Parameter weight;   // (N, D_in, D_out)
    Parameter? bias;    // (N, D_out)

    /// <summary>N groups of D_in -> D_out.</summary>
    /// <param name="groups">N, the number of groups (dim 1 of the input).</param>
    /// <param name="inFeatures">D_in, each group's input width.</param>
    /// <param name="outFeatures">D_out, each group's output width.</param>
    /// <param name="hasBias">Whether each group adds a learned bias.</param>
    /// <param name="device">Where the parameters live; TorchSharp's default device when null.</param>
    /// <param name="dtype">The parameters' dtype; TorchSharp's default dtype when null.</param>
    /// <param name="generator">A CPU generator for the initial values (seed it for reproducible weights).</param>
    public GroupedLinear(long groups, long inFeatures, long outFeatures, bool hasBias = true,
                         Device? device = null, ScalarType? dtype = null, Generator? generator = null)
        : base(nameof(GroupedLinear))
    {
        FanInUniform.CheckSize(groups, nameof(groups));
        FanInUniform.CheckSize(inFeatures, nameof(inFeatures));
        FanInUniform.CheckSize(outFeatures, nameof(outFeatures));
        var (onDevice, ofType) = GetDefaultDeviceAndType(device, dtype);
        weight = FanInUniform.Create([groups, inFeatures, outFeatures], inFeatures, onDevice, ofType, generator);
        if (hasBias) bias = FanInUniform.Create([groups, outFeatures], inFeatures, onDevice, ofType, generator);
        RegisterComponents();
    }

    /// <summary>N, the number of groups.</summary>
    public long Groups => weight.shape[0];

    /// <summary>D_in, each group's input width.</summary>
    public long InFeatures => weight.shape[1];

    /// <summary>D_out, each group's output width.</summary>
    public long OutFeatures => weight.shape[2];

    /// <summary>The weights, (N, D_in, D_out); registered as <c>weight</c>.</summary>
    public Parameter Weight => weight;

    /// <summary>The biases, (N, D_out), or null without bias; registered as <c>bias</c>.</summary>
    public Parameter? Bias => bias;

    /// <summary>x (B, N, D_in) -> y (B, N, D_out), in the parameters' dtype and on their device.</summary>
    public override Tensor forward(Tensor x)
    {
        GroupedInput.Check(x, nameof(GroupedLinear));
        var y = GroupedLinearFunction.Apply(x, weight);   // (B, N, D_out)
        if (bias is null) return y;
        using (y) return y + bias;                          // bias (N, D_out) broadcasts over B
    }
}
