namespace Orchestrator.Training;

/// <summary>
/// Clipping by global norm, as torch.nn.utils.clip_grad_norm_: with norm = sqrt(sum of every gradient element's square
/// over the whole job), each gradient is scaled by min(1, clipNorm / (norm + 1e-6)).
/// </summary>
public static class GradientClipping
{
    /// <summary>The factor for every gradient when the job's global gradient norm is <paramref name="norm"/> (1: no clipping).</summary>
    public static double Scale(double clipNorm, double norm) => clipNorm <= 0 ? 1 : Math.Min(1, clipNorm / (norm + 1e-6));
}
