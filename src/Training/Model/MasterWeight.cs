using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// A trained parameter in mixed precision. <see cref="Master"/> is the parameter of record: what AdamW updates, what
/// checkpoints save and what exports return. <see cref="Working"/> is the copy in the job's dtype that the GEMMs read.
/// For float16 and bfloat16 jobs the master is float32 (an AdamW update of ~1e-4 is below half a bf16 ulp of a weight
/// of ~0.03, so rounding it into a bf16 parameter would drop it); for float32 and float64 jobs the two are one tensor.
/// </summary>
public sealed class MasterWeight : IDisposable
{
    public Tensor Master { get; }
    public Tensor Working { get; }

    /// <summary>Takes ownership of <paramref name="master"/>; makes the working copy when <paramref name="workingDType"/> differs.</summary>
    public MasterWeight(Tensor master, ScalarType workingDType)
    {
        Master = master;
        Working = master.dtype == workingDType ? master : master.to(workingDType).DetachFromDisposeScope();
    }

    /// <summary>Whether <see cref="Working"/> is a tensor of its own, refreshed from the master after every change.</summary>
    public bool HasWorkingCopy => !ReferenceEquals(Master, Working);

    /// <summary>Rounds the master into the working copy (after an update that did not write it, or a restore).</summary>
    public void Refresh()
    {
        if (!HasWorkingCopy) return;
        using var noGrad = no_grad();
        Working.copy_(Master);
    }

    /// <summary>The dtype the masters (and AdamW's moments) of a job in <paramref name="dtype"/> are kept in.</summary>
    public static ScalarType MasterDType(ScalarType dtype) => dtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : dtype;

    public void Dispose()
    {
        Master.Dispose();
        Working.Dispose();
    }
}
