namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// When a training loop saves: after every <c>everySteps</c> completed steps (0: never by count), and once after
/// any <see cref="Request"/>, which another thread (a grain call, a signal handler) may make at any time.
/// </summary>
public sealed class CheckpointSchedule
{
    readonly int everySteps;
    int requested;

    public CheckpointSchedule(int everySteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(everySteps);
        this.everySteps = everySteps;
    }

    /// <summary>Asks for a checkpoint at the next step boundary.</summary>
    public void Request() => Volatile.Write(ref requested, 1);

    /// <summary>Whether to save now that <paramref name="completedSteps"/> steps are done; consumes a pending request.</summary>
    public bool IsDue(long completedSteps)
    {
        bool onRequest = Interlocked.Exchange(ref requested, 0) == 1;
        return onRequest || (everySteps > 0 && completedSteps > 0 && completedSteps % everySteps == 0);
    }
}
