namespace Orchestrator.Training;

/// <summary>
/// Where a step's trunk-side tensor work runs: the calling thread in process (<see cref="CallingThread"/>), a device's
/// executor thread on a silo. Work items are synchronous lambdas that open their own dispose scopes.
/// </summary>
public interface ITensorThread
{
    Task<T> RunAsync<T>(Func<T> work);
}

/// <summary>Runs work at once on the thread that asks: the single-process trainer's.</summary>
public sealed class CallingThread : ITensorThread
{
    public static CallingThread Instance { get; } = new();

    public Task<T> RunAsync<T>(Func<T> work)
    {
        try
        {
            return Task.FromResult(work());
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }
}
