using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Modules;

/// <summary>
/// N independent SwiGLU MLPs, one per group, as a TorchSharp module:
/// out[:, n] = (silu(x[:, n] @ Wg[n]) * (x[:, n] @ Wu[n])) @ Wd[n].
/// Input x (B, N, D_in), output (B, N, D_out). Parameters <c>w_gate_up</c> (N, D_in, 2H), the gate and up
/// projections side by side ([Wg | Wu], so the input projection is one GEMM), and <c>w_down</c> (N, H, D_out),
/// each initialised as nn.Linear does for its fan-in. Forward and backward are the fused kernels of
/// <see cref="Kernels.GroupedSwiGluMlp"/> through <see cref="GroupedSwiGluFunction"/>: strided batched GEMMs
/// and, on CUDA, one NVRTC kernel for the activation each way.
/// </summary>
public sealed class GroupedSwiGluMlp : nn.Module<Tensor, Tensor>
{
    // Module.to() replaces these through reflection, so not readonly. The names match the trainer's towers.
    [ComponentName(Name = "w_gate_up")] Parameter wGateUp;   // (N, D_in, 2H)
    [ComponentName(Name = "w_down")] Parameter wDown;        // (N, H, D_out)

    /// <summary>N groups of D_in -> H -> D_out.</summary>
    /// <param name="groups">N, the number of groups (dim 1 of the input).</param>
    /// <param name="inFeatures">D_in, each group's input width.</param>
    /// <param name="hiddenFeatures">H, each group's hidden width (the gate and the up projection each have H).</param>
    /// <param name="outFeatures">D_out, each group's output width.</param>
    /// <param name="device">Where the parameters live; TorchSharp's default device when null.</param>
    /// <param name="dtype">The parameters' dtype; TorchSharp's default dtype when null.</param>
    /// <param name="generator">A CPU generator for the initial values (seed it for reproducible weights).</param>
    public GroupedSwiGluMlp(long groups, long inFeatures, long hiddenFeatures, long outFeatures,
                            Device? device = null, ScalarType? dtype = null, Generator? generator = null)
        : base(nameof(GroupedSwiGluMlp))
    {
        FanInUniform.CheckSize(groups, nameof(groups));
        FanInUniform.CheckSize(inFeatures, nameof(inFeatures));
        FanInUniform.CheckSize(hiddenFeatures, nameof(hiddenFeatures));
        FanInUniform.CheckSize(outFeatures, nameof(outFeatures));
        var (onDevice, ofType) = GetDefaultDeviceAndType(device, dtype);
        wGateUp = FanInUniform.Create([groups, inFeatures, 2 * hiddenFeatures], inFeatures, onDevice, ofType, generator);
        wDown = FanInUniform.Create([groups, hiddenFeatures, outFeatures], hiddenFeatures, onDevice, ofType, generator);
        RegisterComponents();
    }

    /// <summary>N, the number of groups.</summary>
    public long Groups => wGateUp.shape[0];

    /// <summary>D_in, each group's input width.</summary>
    public long InFeatures => wGateUp.shape[1];

    /// <summary>H, each group's hidden width.</summary>
    public long HiddenFeatures => wDown.shape[1];

    /// <summary>D_out, each group's output width.</summary>
    public long OutFeatures => wDown.shape[2];

    /// <summary>The fused gate and up weights, (N, D_in, 2H) with gate in [..., :H]; registered as <c>w_gate_up</c>.</summary>
    public Parameter GateUpWeight => wGateUp;

    /// <summary>The down projection's weights, (N, H, D_out); registered as <c>w_down</c>.</summary>
    public Parameter DownWeight => wDown;

    /// <summary>x (B, N, D_in) -> (B, N, D_out), in the parameters' dtype and on their device.</summary>
    public override Tensor forward(Tensor x)
    {
        GroupedInput.Check(x, nameof(GroupedSwiGluMlp));
        return GroupedSwiGluFunction.Apply(x, wGateUp, wDown);
    }
}
