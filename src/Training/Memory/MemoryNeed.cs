using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// What a part of a job needs on its device, estimated from the spec alone so that a job too large for its devices is
/// refused with the numbers before anything is allocated (an oversized shape otherwise dies deep in libtorch, or grows
/// a silo until the kernel kills it). Per parameter: the stored weight (a float32 master for half precision, plus its
/// working copy), its gradient and AdamW's two moments; per step: the activations kept for the backward and the
/// gradients flowing back through them.
/// </summary>
public readonly record struct MemoryNeed(long Parameters, long Optimizer, long Activations)
{
    public long Total => Parameters + Optimizer + Activations;

    public static MemoryNeed operator +(MemoryNeed a, MemoryNeed b) =>
        new(a.Parameters + b.Parameters, a.Optimizer + b.Optimizer, a.Activations + b.Activations);

    /// <summary>A tower shard of <paramref name="groups"/> groups: (groups, D_in, 2H) and (groups, H, D_out) weights.</summary>
    public static MemoryNeed Towers(JobSpec spec, int groups)
    {
        var s = spec.Shape;
        long parameters = (long)groups * ((long)s.Input * 2 * s.Hidden + (long)s.Hidden * s.Output);
        // Kept: x, gate_up (2H), h (H), y; flowing back: as much again.
        long activations = 2L * spec.BatchSize * groups * (s.Input + 3L * s.Hidden + s.Output);
        return Of(spec, parameters, activations);
    }

    /// <summary>The trunk, (D_feat, N*D_in) and (N*D_in), with the batch, the gathered outputs and their gradients.</summary>
    public static MemoryNeed Trunk(JobSpec spec)
    {
        var s = spec.Shape;
        long width = (long)s.Groups * s.Input;
        long parameters = (long)s.Features * width + width;
        long activations = spec.BatchSize * (s.Features + 3 * width + 3L * s.Groups * s.Output);
        return Of(spec, parameters, activations);
    }

    static MemoryNeed Of(JobSpec spec, long parameters, long activations)
    {
        var dtype = spec.DType;
        long working = Kernels.DTypeNames.ElementSize(dtype), stored = Kernels.DTypeNames.ElementSize(MasterWeight.MasterDType(dtype));
        long perParameter = stored + (stored == working ? 0 : working) + working;   // weight (+ working copy) + gradient
        return new MemoryNeed(Checked(parameters, perParameter), Checked(parameters, 2 * stored), Checked(activations, working));
    }

    /// <summary>A product that saturates instead of wrapping: a shape of 10^9 x 10^9 must be refused, not look small.</summary>
    static long Checked(long count, long bytes) => count > long.MaxValue / 4 / Math.Max(bytes, 1) ? long.MaxValue / 4 : count * bytes;

    /// <summary>
    /// Throws a <see cref="JobSpecException"/> (naming the shape) when the need exceeds <paramref name="available"/>
    /// bytes on <paramref name="where"/>; <paramref name="source"/> says where the figure came from.
    /// </summary>
    public void Check(long available, string where, string source, string what)
    {
        if (Total <= available) return;
        throw new JobSpecException(nameof(JobSpec.Shape),
            $"{what} needs {Gib(Total)} on {where} (parameters and gradients {Gib(Parameters)}, AdamW moments {Gib(Optimizer)}, activations " +
            $"{Gib(Activations)}), but {Gib(available)} is available there ({source}); shrink the model or the batch, or spread the groups " +
            "over more devices (--devices, --workers-per-device on more silos).");
    }

    static string Gib(long bytes) => bytes >= long.MaxValue / 4 ? "more than 2^61 bytes" : $"{bytes / (double)(1L << 30):F2} GiB";
}
