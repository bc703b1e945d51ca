using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The shared input layer the coordinator owns: x = reshape(silu(features @ W + b), (B, N, D_in)).
/// W (D_feat, N*D_in), b (N*D_in), each a <see cref="MasterWeight"/>: float32 masters for half-precision jobs, read by
/// the GEMM through working copies in the job's dtype. Forward keeps what Backward needs; Backward steps AdamW.
/// </summary>
public sealed class Trunk : IDisposable
{
    readonly ModelShape shape;
    readonly MasterWeight weight;   // (D_feat, N*D_in)
    readonly MasterWeight bias;     // (N*D_in)
    readonly AdamW? optimizer;      // null for a frozen trunk (the synthetic teacher), which keeps no masters
    readonly DeferredUpdate? update;
    Tensor? savedFeatures;          // (B, D_feat)
    Tensor? savedPre;               // (B, N*D_in) pre-activation

    public Trunk(ModelShape shape, long seed, ScalarType dtype, Device device, OptimizerSpec? optimizer)
    {
        this.shape = shape;
        long width = (long)shape.Groups * shape.Input;
        var stored = optimizer is null ? dtype : MasterWeight.MasterDType(dtype);
        weight = new MasterWeight(GroupInit.Normal(seed, GroupInit.Shared, ParameterNames.TrunkWeight, [shape.Features, width],
            1 / Math.Sqrt(shape.Features), stored, device).DetachFromDisposeScope(), dtype);
        bias = new MasterWeight(GroupInit.Normal(seed, GroupInit.Shared, ParameterNames.TrunkBias, [width], 0.1, stored, device)
            .DetachFromDisposeScope(), dtype);
        this.optimizer = optimizer is null ? null : new AdamW(optimizer, weight, bias);
        update = this.optimizer is null ? null : new DeferredUpdate(this.optimizer);
    }

    /// <summary>The weight of record (the master): (D_feat, N*D_in).</summary>
    public Tensor Weight => weight.Master;
    /// <summary>The bias of record (the master): (N*D_in).</summary>
    public Tensor Bias => bias.Master;
    /// <summary>The weight and the bias, in the order of the optimizer's state.</summary>
    public IReadOnlyList<MasterWeight> Weights => [weight, bias];
    public AdamW? Optimizer => optimizer;

    /// <summary>features (B, D_feat) -> x (B, N, D_in), kept for <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor features)
    {
        if (savedPre is not null) throw new InvalidOperationException("Trunk.Forward called twice without Backward.");
        using var scope = NewDisposeScope();
        var pre = Project(features);
        savedFeatures = features.alias().DetachFromDisposeScope();
        savedPre = pre.DetachFromDisposeScope();
        return Activate(pre).MoveToOuterDisposeScope();
    }

    /// <summary>Forward without keeping anything (no training).</summary>
    public Tensor Infer(Tensor features)
    {
        using var scope = NewDisposeScope();
        return Activate(Project(features)).MoveToOuterDisposeScope();
    }

    /// <summary>dX (B, N, D_in) -> gradients of W and b, then one AdamW step.</summary>
    public void Backward(Tensor dX)
    {
        BackwardDeferred(dX);
        Update.Apply();
    }

    /// <summary>
    /// dX (B, N, D_in) -> gradients of W and b, held in <see cref="Update"/> until the step is accepted (applied,
    /// maybe clipped) or rejected (dropped).
    /// </summary>
    public void BackwardDeferred(Tensor dX)
    {
        if (savedPre is null || savedFeatures is null) throw new InvalidOperationException("Trunk.Backward called without Forward.");
        using var scope = NewDisposeScope();
        var dPre = ActivationBackward(dX.reshape(savedPre.shape), savedPre);   // (B, N*D_in)
        var dWeight = savedFeatures.t().matmul(dPre);                         // (D_feat, N*D_in)
        var dBias = dPre.sum(0L);                                             // (N*D_in)
        Update.Hold(dWeight, dBias);
        Discard();
    }

    /// <summary>The step's gradients, waiting for AdamW.</summary>
    public DeferredUpdate Update => update ?? throw new InvalidOperationException("this trunk is frozen.");

    /// <summary>Drops what Forward kept, for a step that is rejected before its backward: nothing changes.</summary>
    public void Discard()
    {
        savedPre?.Dispose(); savedPre = null;
        savedFeatures?.Dispose(); savedFeatures = null;
    }

    Tensor Project(Tensor features)
    {
        if (features.dim() != 2 || features.shape[1] != shape.Features)
            throw new ArgumentException($"features must be (B, {shape.Features}); got ({string.Join(", ", features.shape)}).", nameof(features));
        return addmm(bias.Working, features, weight.Working, beta: 1, alpha: 1);                   // (B, N*D_in)
    }

    Tensor Activate(Tensor pre) => nn.functional.silu(pre).view(pre.shape[0], shape.Groups, shape.Input);   // (B, N, D_in)

    /// <summary>dPre = dX * silu'(z), silu'(z) = s * (1 + z * (1 - s)), s = sigmoid(z): one fused pass on CUDA.</summary>
    public static Tensor ActivationBackward(Tensor dX, Tensor z)
    {
        if (FusedElementwise.Supports(dX, z))
        {
            var dPre = empty_like(z);
            FusedElementwise.SiluBackward(dX, z, dPre);
            return dPre;
        }
        return dX * Kernels.Silu.Derivative(z);
    }

    public void Dispose()
    {
        weight.Dispose(); bias.Dispose();
        Discard();
        update?.Dispose();
        optimizer?.Dispose();
    }
}
