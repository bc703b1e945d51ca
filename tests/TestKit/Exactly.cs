using static TorchSharp.torch;

namespace Orchestrator.TestKit;

/// <summary>Bit-for-bit comparison (TorchSharp's Tensor.equal is elementwise).</summary>
public static class Exactly
{
    public static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }
}
