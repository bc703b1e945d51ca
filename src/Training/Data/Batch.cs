using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>One training batch. Owns its tensors.</summary>
public sealed record Batch(Tensor Features, Tensor Targets) : IDisposable   // (B, D_feat), (B, N, D_out)
{
    public void Dispose()
    {
        Features.Dispose();
        Targets.Dispose();
    }
}
