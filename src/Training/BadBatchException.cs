namespace Orchestrator.Training;

/// <summary>
/// A step was rejected before any parameter changed: its batch holds NaN or Inf, or its loss is not finite.
/// The job stays where it was.
/// </summary>
public sealed class BadBatchException(string message) : Exception(message)
{
    /// <summary>Throws naming the batch, the tensor and how many of its elements are not finite.</summary>
    public static void ThrowIfNotFinite(TorchSharp.torch.Tensor t, string what, long batch)
    {
        using var finite = t.isfinite();
        long bad = t.numel() - finite.sum().item<long>();
        if (bad > 0)
            throw new BadBatchException($"batch {batch} is rejected: its {what} hold {bad} NaN or infinite values; the model is unchanged.");
    }
}
