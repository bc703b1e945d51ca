namespace Orchestrator.Training;

/// <summary>
/// A step was rejected before any parameter changed: its batch holds NaN or Inf, or its loss is not finite.
/// The job stays where it was.
/// </summary>
public sealed class BadBatchException(string message) : Exception(message)
{
    /// <summary>What binary cross-entropy asks of targets, for errors about ones outside [0, 1].</summary>
    public const string ProbabilityTargets = "which binary cross-entropy (--loss bce) needs (labels 0/1 or probabilities)";

    /// <summary>Why batch <paramref name="batch"/> is rejected when its <paramref name="what"/> hold <paramref name="bad"/> NaN or infinite values.</summary>
    public static string NonFinite(long bad, string what, long batch) =>
        $"batch {batch} is rejected: its {what} hold {bad} NaN or infinite values; the model is unchanged.";
}
