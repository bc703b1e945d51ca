using Orleans.Runtime;

namespace Orchestrator.Grains;

/// <summary>Worker calls failed because their silos died or became unreachable; the job can recover without them.</summary>
public sealed class WorkersLostException(IReadOnlyCollection<string> silos, Exception inner)
    : Exception($"workers on {string.Join(", ", silos)} were lost: {inner.Message}", inner)
{
    public IReadOnlyCollection<string> Silos { get; } = silos;

    /// <summary>Whether a grain call failed because the silo behind it is gone, rather than because of the call itself.</summary>
    public static bool IsSiloLoss(Exception e) => e is SiloUnavailableException or OrleansMessageRejectionException
        || (e is AggregateException { InnerExceptions.Count: 1 } one && IsSiloLoss(one.InnerException!));
}
