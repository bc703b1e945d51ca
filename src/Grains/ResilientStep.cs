using Orchestrator.Training;
using Orleans.Runtime;

namespace Orchestrator.Grains;

/// <summary>
/// How a client steps a job through silo failures. Right after a silo dies, calls whose grain directory entry lived
/// on it are rejected before they reach any grain, until membership declares it dead; such a call never ran, so it
/// is sent again. If the coordinator's own activation was lost with the silo, a new activation answers "not
/// started": the job is started again from its last checkpoint (it needs Checkpoint.Directory) and stepping goes on.
/// Anything else, and any failure past the patience, propagates.
/// </summary>
public static class ResilientStep
{
    public static async Task<StepMetrics> RunAsync(ICoordinatorGrain coordinator, JobSpec spec, TimeSpan patience, Action<string>? notice = null)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                return await Delivered(coordinator.StepAsync, deadline);
            }
            catch (InvalidOperationException) when (spec.Checkpoint.Directory is not null && DateTime.UtcNow < deadline)
            {
                if ((await Delivered(coordinator.GetStatusAsync, deadline)).State != JobState.NotStarted) throw;
                notice?.Invoke($"the coordinator of '{spec.Name}' was lost with its silo; resuming from the last checkpoint");
                await Delivered(() => coordinator.StartAsync(spec, resume: true), deadline);
            }
        }
    }

    static async Task<T> Delivered<T>(Func<Task<T>> call, DateTime deadline)
    {
        while (true)
        {
            try
            {
                return await call();
            }
            catch (OrleansMessageRejectionException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
            }
        }
    }
}
