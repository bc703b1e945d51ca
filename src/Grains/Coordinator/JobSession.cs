using Orchestrator.Training;
using Orleans.Runtime;

namespace Orchestrator.Grains;

/// <summary>
/// A client's hold on one job it started: it steps the job, renews the job's lease (<see cref="JobSpec.LeaseSeconds"/>)
/// several times per lease, also while a step runs, and carries the job through the loss of its coordinator.
/// <para>
/// The lease renewal doubles as the coordinator's liveness probe. When the coordinator's silo dies, a pending step
/// would wait for the whole response timeout (minutes): instead, as soon as membership has declared the silo dead, a
/// renewal reaches a new coordinator activation, whose other incarnation shows that the one this session started is
/// gone. The session then abandons the pending step and starts the job again from its newest checkpoint (it needs
/// Checkpoint.Directory), and stepping goes on from there. Calls rejected while the cluster settles never ran and are
/// sent again; anything else, and any failure past the patience, propagates.
/// </para>
/// </summary>
public sealed class JobSession : IAsyncDisposable
{
    readonly ICoordinatorGrain coordinator;
    readonly JobSpec spec;
    readonly TimeSpan patience;
    readonly Action<string> notice;
    readonly CancellationTokenSource closing = new();
    readonly Task renewing;
    /// <summary>The coordinator activation the session started, and what learns when another one answers instead.</summary>
    sealed record Watch(JobStatus Started)
    {
        public TaskCompletionSource Lost { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Replaced as a whole when the job resumes, so a renewal always compares with the incarnation it renewed.</summary>
    volatile Watch watch;

    /// <summary>The status the job was last started (or resumed) with.</summary>
    public JobStatus Status => watch.Started;

    JobSession(ICoordinatorGrain coordinator, JobSpec spec, JobStatus started, TimeSpan patience, Action<string> notice)
    {
        (this.coordinator, this.spec, watch, this.patience, this.notice) = (coordinator, spec, new Watch(started), patience, notice);
        renewing = Task.Run(RenewAsync);
    }

    /// <summary>Starts (or with <paramref name="resume"/> resumes) <paramref name="spec"/> on its coordinator and holds its lease.</summary>
    /// <param name="patience">How long one step may spend getting through silo failures (waiting for membership, resuming).</param>
    /// <param name="notice">Told, in the user's words, when the session resumes the job on a new coordinator.</param>
    public static async Task<JobSession> StartAsync(IGrainFactory grains, JobSpec spec, bool resume, TimeSpan patience, Action<string>? notice = null)
    {
        var coordinator = grains.GetGrain<ICoordinatorGrain>(spec.Name);
        var started = await coordinator.StartAsync(spec, resume);
        return new JobSession(coordinator, spec, started, patience, notice ?? (_ => { }));
    }

    public ICoordinatorGrain Coordinator => coordinator;

    /// <summary>Interval of the renewals: four per lease, so that two lost ones in a row still leave time.</summary>
    TimeSpan RenewEvery => TimeSpan.FromSeconds(Math.Max(0.25, spec.LeaseSeconds / 4.0));

    /// <summary>One step of the job, through coordinator and silo losses (see the class).</summary>
    public async Task<StepMetrics> StepAsync()
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            var current = watch;
            // Fenced: an abandoned call that is still being sent again, or still in flight, reaches only the resumed
            // coordinator, which refuses a step meant for the incarnation this one was sent to.
            var step = Delivered(() => coordinator.StepAsync(current.Started.Incarnation), deadline);
            if (await Task.WhenAny(step, current.Lost.Task) == step)
            {
                try
                {
                    return await step;
                }
                catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
                {
                    // "Not started", or "meant for another activation", from a new activation that the step reached before
                    // any renewal did; else a real error.
                    if ((await Delivered(coordinator.GetStatusAsync, deadline)).Incarnation == current.Started.Incarnation) throw;
                }
            }
            else
                _ = step.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);   // refused, or it times out: seen, ignored
            await ResumeAsync(deadline);
        }
    }

    /// <summary>Starts the job again from its newest checkpoint on the coordinator activation that answers now.</summary>
    async Task ResumeAsync(DateTime deadline)
    {
        var lostSilo = Status.CoordinatorSilo;
        if (spec.Checkpoint.Directory is null)
            throw new InvalidOperationException(
                $"the coordinator of job '{spec.Name}' was lost with its silo {lostSilo}, and the job has no checkpoint directory, so its " +
                "progress is gone; start it again (with --checkpoint-dir and --checkpoint-every to survive this).");
        notice($"the coordinator of '{spec.Name}' was lost with its silo {lostSilo}; resuming from the last checkpoint");
        watch = new Watch(await Delivered(() => coordinator.StartAsync(spec, resume: true), deadline));
        notice($"resumed '{spec.Name}' at step {Status.StepsDone} on {Status.CoordinatorSilo}");
    }

    /// <summary>Renews the lease until the session closes; a renewal that another incarnation answers sets <see cref="Watch.Lost"/>.</summary>
    async Task RenewAsync()
    {
        using var timer = new PeriodicTimer(RenewEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(closing.Token))
            {
                try
                {
                    var current = watch;
                    var now = await coordinator.RenewLeaseAsync(current.Started.Incarnation).WaitAsync(RenewEvery * 2, closing.Token);
                    if (now.Incarnation != current.Started.Incarnation) current.Lost.TrySetResult();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A lost renewal is no verdict: the silo may be dying, or just slow. The next one asks again.
                }
            }
        }
        catch (OperationCanceledException) when (closing.IsCancellationRequested)
        {
        }
    }

    /// <summary>Sends <paramref name="call"/> again while the cluster rejects it (it never ran), until the deadline.</summary>
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

    /// <summary>Stops renewing: the lease then runs out unless the job is stopped.</summary>
    public async ValueTask DisposeAsync()
    {
        closing.Cancel();
        await renewing;
        closing.Dispose();
    }
}
