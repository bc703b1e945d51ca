using static TorchSharp.torch;

namespace Orchestrator.Kernels.Modules;

/// <summary>
/// The modules take (B, N, D_in) only. The kernels also accept the flattened (B*N, D_in) layout, but a module's
/// per-group bias broadcasts over dim 0 of a (B, N, ·) tensor and would silently pair rows with the wrong group
/// of a flattened one.
/// </summary>
static class GroupedInput
{
    public static void Check(Tensor x, string module)
    {
        if (x.dim() != 3)
            throw new ArgumentException($"{module} takes input (B, N, D_in); got {x.dim()} dims {GroupedShapes.Show(x)}.", nameof(x));
    }
}
