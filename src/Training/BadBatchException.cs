namespace Orchestrator.Training;

/// <summary>
/// A step was rejected before any parameter changed: its batch holds NaN or Inf, or its loss is not finite.
/// The job stays where it was.
/// </summary>
public sealed class BadBatchException(string message) : Exception(message)
{
    /// <summary>What is wrong with <paramref name="t"/>, naming the batch, the tensor and how many elements are not finite; null when all are.</summary>
    public static string? NonFinite(TorchSharp.torch.Tensor t, string what, long batch)
    {
        using var finite = t.isfinite();
        long bad = t.numel() - finite.sum().item<long>();
        return bad > 0 ? $"batch {batch} is rejected: its {what} hold {bad} NaN or infinite values; the model is unchanged." : null;
    }
}
