using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Orchestrator.Grains;

/// <summary>
/// The coordinator of one job, keyed by its name: the job's lifecycle (start, steps, stop), the client's lease and the
/// status. The parts it drives each do one job:
/// <list type="bullet">
/// <item><see cref="JobLauncher"/> builds the trunk, the data and the workers (where <see cref="Placement.JobPlanner"/>
/// puts them) and releases them;</item>
/// <item><see cref="TrainingStep"/> runs each step, with the workers as its towers through <see cref="WorkerExchange"/>;</item>
/// <item><see cref="JobCheckpoints"/> saves checkpoints and picks the one to continue from;</item>
/// <item><see cref="JobRecovery"/> rebuilds the job without silos it lost.</item>
/// </list>
/// </summary>
[KeepAlive]
public sealed class CoordinatorGrain : Grain, ICoordinatorGrain
{
    readonly TensorTransports transports;
    readonly IClusterMembershipService membership;
    readonly PathRoots paths;
    readonly ILogger<CoordinatorGrain> log;
    readonly JobLauncher launcher;
    readonly JobCheckpoints checkpoints;
    readonly JobRecovery recovery;
    /// <summary>This activation's identity: workers obey stops from the coordinator activation they serve only.</summary>
    readonly Guid incarnation = Guid.NewGuid();
    /// <summary>The job's parts on the cluster while it runs (null before it starts, after it stops, while it recovers).</summary>
    RunningJob? job;
    /// <summary>The steps the last started spec asks for, for the status.</summary>
    int stepsPlanned;
    JobState state = JobState.NotStarted;
    /// <summary>When the client driving the job was last heard from (<see cref="Environment.TickCount64"/>, ms).</summary>
    long clientSeenAt;
    /// <summary>Checks the client's lease between calls while a job holds devices (see <see cref="JobSpec.LeaseSeconds"/>).</summary>
    IGrainTimer? leaseCheck;
    long steps;
    double? lastLoss;
    EvalMetrics? lastEval;
    /// <summary>Why the job finished before its last step (early stopping), for the status.</summary>
    string? endNote;
    string? error;

    public CoordinatorGrain(DeviceExecutors executors, TensorTransports transports, IClusterMembershipService membership,
        ISiloMetadataCache metadata, PathRoots paths, JobMemoryLimit memory, IGrainFactory grains, ILogger<CoordinatorGrain> log)
    {
        (this.transports, this.paths, this.log) = (transports, paths, log);
        launcher = new JobLauncher(executors, transports, membership, metadata, memory, grains, incarnation);
        checkpoints = new JobCheckpoints(Name, log);
        recovery = new JobRecovery(launcher, checkpoints, membership, log);
        this.membership = membership;
    }

    string Name => this.GetPrimaryKeyString();

    /// <summary>The running job, or an error saying why there is none.</summary>
    RunningJob Running => job ?? throw NotRunning();

    InvalidOperationException NotRunning() => new($"job '{Name}' is {state}{(error is null ? "" : $" ({error})")}; start it first.");

    public async Task<JobStatus> StartAsync(JobSpec newSpec, bool resume = false)
    {
        // The cluster's edge: any client may call, so the spec is validated here, once, and workers get only what they use.
        newSpec = newSpec.Validate();
        if (newSpec.Name != Name)
            throw new JobSpecException(nameof(JobSpec.Name), $"'{newSpec.Name}' is not this coordinator's job '{Name}'.");
        paths.Check(newSpec.Data.Path, "Data.Path");
        paths.Check(newSpec.Checkpoint.Directory, "Checkpoint.Directory");
        paths.Check(newSpec.Validation.Path, "Validation.Path");
        if (state == JobState.Running)
        {
            var running = Running;
            if (LeaseLeft(running) is var left && left > TimeSpan.Zero)
                throw new InvalidOperationException(
                    $"job '{Name}' is already running, driven by a client last heard from {SinceClient.TotalSeconds:F0} s ago. If that client is " +
                    $"gone, its lease ends in {left.TotalSeconds:F0} s and --resume takes the job over then; `orchestrator stop {Name}` stops it now " +
                    "(checkpointing first).");
            await AbandonAsync(running);   // the lease ran out before its check did: take the job over as the check would
        }
        await ReleaseAsync();
        var store = newSpec.Checkpoint.Directory is { } root ? new CheckpointStore(root) : null;
        var restore = resume ? await Task.Run(() => checkpoints.ToResume(newSpec, store)) : null;
        var started = await launcher.BuildAsync(newSpec, store, restore, excluded: new HashSet<string>());
        (job, stepsPlanned, state, steps, lastLoss, error, lastEval, endNote) =
            (started, newSpec.Steps, JobState.Running, restore?.Manifest.Step ?? 0, null, null, null, null);
        checkpoints.LastSaved = restore?.Manifest.Step;
        if (steps >= newSpec.Steps) state = JobState.Finished;
        HeardFromClient();
        var period = TimeSpan.FromSeconds(Math.Clamp(newSpec.LeaseSeconds / 4.0, 0.5, 10));
        leaseCheck = this.RegisterGrainTimer(CheckLeaseAsync, new GrainTimerCreationOptions(period, period) { Interleave = false });
        await GrainFactory.GetGrain<IClusterGrain>(IClusterGrain.Key).AddJobAsync(Name);
        log.LogInformation("Job {Job} started on {Silo} with {Workers} workers: {Assignment}", Name, transports.SiloName, started.Workers.Length,
            string.Join(", ", started.Workers.Select(w => $"{w.Plan.Device} {w.Groups} ({w.Transport.Kind})")));
        return Status();
    }

    public async Task<StepMetrics> StepAsync(Guid incarnation = default)
    {
        if (incarnation != default && incarnation != this.incarnation)
            throw new InvalidOperationException(
                $"this step of job '{Name}' was meant for coordinator activation {incarnation}, which is gone; this is {this.incarnation}.");
        if (state != JobState.Running) throw NotRunning();
        HeardFromClient();
        while (true)
        {
            var running = Running;
            try
            {
                var metrics = await Step(running);
                HeardFromClient();   // a step can outlast the lease; the client renews it meanwhile, and it is waiting now
                (steps, lastLoss) = (steps + 1, metrics.Loss);
                if (steps >= running.Spec.Steps) state = JobState.Finished;
                log.LogDebug("Job {Job} step {Step} loss {Loss} in {Ms} ms", Name, metrics.Step, metrics.Loss, metrics.TotalMs);
                if (running.Spec.Validation.IsDue(steps, running.Spec.Steps)) metrics = metrics with { Eval = await Evaluate(running) };
                if (running.Checkpoints is not null && (running.Schedule.IsDue(steps) || state == JobState.Finished) && checkpoints.LastSaved != steps)
                    await checkpoints.SaveAsync(running, steps);
                return metrics;
            }
            catch (WorkersLostException lost) when (recovery.CanRecover)
            {
                log.LogWarning(lost, "Job {Job} lost workers on {Silos} at step {Step}; restoring from the last checkpoint", Name,
                    string.Join(", ", lost.Silos), steps);
                await RecoverAsync(running, lost.Silos);
            }
            catch (BadBatchException e)
            {
                log.LogWarning("Job {Job}: {Problem}", Name, e.Message);   // the job stays at this step, unchanged
                throw;
            }
            catch (Exception e)
            {
                (state, error) = (JobState.Failed, e.Message);
                log.LogError(e, "Job {Job} failed at step {Step}", Name, steps);
                throw;
            }
        }
    }

    /// <summary>The job rebuilt without <paramref name="lostSilos"/> (<see cref="JobRecovery"/>), or failed saying why it could not be.</summary>
    async Task RecoverAsync(RunningJob lostJob, IReadOnlyCollection<string> lostSilos)
    {
        (state, job) = (JobState.Recovering, null);
        try
        {
            var (rebuilt, from) = await recovery.RebuildAsync(lostJob, lostSilos);
            (job, state, steps, checkpoints.LastSaved) = (rebuilt, JobState.Running, from ?? 0, from);
            log.LogInformation("Job {Job} recovered at step {Step} with {Workers} workers: {Assignment}", Name, steps, rebuilt.Workers.Length,
                string.Join(", ", rebuilt.Workers.Select(w => $"{w.Plan.Device} {w.Groups}")));
        }
        catch (Exception e)
        {
            (state, error) = (JobState.Failed, $"lost workers on {string.Join(", ", lostSilos)} and could not recover: {e.Message}");
            log.LogError(e, "Job {Job} could not recover", Name);
            throw new InvalidOperationException(error, e);
        }
    }

    /// <summary>
    /// The model on the held-out data, forward only on the workers, judged against the best so far: a new best is
    /// checkpointed and marked "best"; EarlyStopPatience evaluations without one finish the job.
    /// </summary>
    async Task<EvalMetrics> Evaluate(RunningJob running)
    {
        var eval = running.EarlyStopping.Judge(await running.Evaluation!.RunAsync(steps, Exchange(running)));
        lastEval = eval;
        log.LogInformation("Job {Job} step {Step}: validation loss {Loss} on {Samples} samples{Best}", Name, steps, eval.Loss, eval.Samples,
            eval.Best ? " (best)" : $" (best {eval.BestLoss} at step {eval.BestStep})");
        if (eval.Best && running.Checkpoints is not null) await checkpoints.MarkBestAsync(running, steps);
        if (eval.StopsEarly && state == JobState.Running)
        {
            (state, endNote) = (JobState.Finished, $"stopped early after step {steps}: the validation loss has not improved for " +
                $"{eval.SinceBest} evaluations (best {eval.BestLoss:G6} at step {eval.BestStep})");
            log.LogInformation("Job {Job} {Note}", Name, endNote);
        }
        return eval;
    }

    /// <summary>One <see cref="TrainingStep"/> with this job's workers as its towers, and what the exchange moved.</summary>
    async Task<StepMetrics> Step(RunningJob running)
    {
        var exchange = Exchange(running);
        var metrics = await running.Step.RunAsync(steps, exchange);
        return metrics with { ScatterMs = exchange.ScatterMs, GatherMs = exchange.GatherMs, BytesMoved = exchange.Bytes };
    }

    /// <summary>The job's workers as the towers of one step or evaluation (it counts that exchange's traffic).</summary>
    WorkerExchange Exchange(RunningJob running) =>
        new(running.Workers, running.Executor, membership, running.Spec.Shape.Input, running.Spec.Shape.Output);

    public async Task<long> CheckpointAsync()
    {
        HeardFromClient();
        var running = job ?? throw new InvalidOperationException($"job '{Name}' is {state}; there is nothing to checkpoint.");
        if (running.Checkpoints is null) throw new JobSpecException("Checkpoint.Directory", $"job '{Name}' has no checkpoint directory.");
        await checkpoints.SaveIfUnsavedAsync(running, steps);
        return steps;
    }

    public Task<JobStatus> GetStatusAsync() => Task.FromResult(Status());

    public Task<JobStatus> RenewLeaseAsync(Guid client)
    {
        if (client == incarnation && job is not null) HeardFromClient();
        return Task.FromResult(Status());
    }

    JobStatus Status() =>
        new(Name, state, steps, stepsPlanned, lastLoss, (job?.Workers ?? []).Select(w => w.Info).ToArray(), error, transports.SiloName,
            checkpoints.LastSaved, recovery.Count, checkpoints.Note, incarnation, lastEval, endNote);

    void HeardFromClient() => clientSeenAt = Environment.TickCount64;

    TimeSpan SinceClient => TimeSpan.FromMilliseconds(Environment.TickCount64 - clientSeenAt);

    /// <summary>How long the client's lease on <paramref name="running"/> still runs (negative: it ran out).</summary>
    TimeSpan LeaseLeft(RunningJob running) => TimeSpan.FromSeconds(running.Spec.LeaseSeconds) - SinceClient;

    /// <summary>The lease timer: between calls (it never interleaves with a step), abandons a job whose client went quiet.</summary>
    async Task CheckLeaseAsync(CancellationToken cancellation)
    {
        if (job is not { } running || LeaseLeft(running) > TimeSpan.Zero) return;
        await AbandonAsync(running);
    }

    /// <summary>
    /// The client's lease ran out: the job is checkpointed (a running job with a directory; a failed save is logged and
    /// named in the status, and the last good checkpoint stays), its devices released, and it waits, Abandoned, for
    /// <c>--resume</c> or <c>orchestrator stop</c>.
    /// </summary>
    async Task AbandonAsync(RunningJob running)
    {
        var quiet = SinceClient;
        log.LogWarning("Job {Job}: no client was heard from for {Seconds:F0} s (lease {Lease} s); checkpointing and releasing it", Name,
            quiet.TotalSeconds, running.Spec.LeaseSeconds);
        string saved;
        try
        {
            saved = await SaveIfUnsaved(running) is { } step ? $"checkpointed at step {step}" : "it has no checkpoint directory, so its progress is gone";
        }
        catch (Exception e)
        {
            log.LogError(e, "Job {Job}: could not checkpoint the abandoned job", Name);
            saved = $"saving a checkpoint failed ({e.Message}); the last one is at step {checkpoints.LastSaved?.ToString() ?? "(none)"}";
        }
        await ReleaseAsync();
        (state, error) = (JobState.Abandoned,
            $"no client was heard from for {quiet.TotalSeconds:F0} s (lease {running.Spec.LeaseSeconds} s) at step {steps}; {saved}");
    }

    /// <summary>
    /// Saves the current step of a job that has a directory, unless it is saved or the job is not running (a failed step
    /// leaves no state worth saving); returns the newest saved step, or null without a directory.
    /// </summary>
    async Task<long?> SaveIfUnsaved(RunningJob running) =>
        state is JobState.Running ? await checkpoints.SaveIfUnsavedAsync(running, steps) : running.Checkpoints is null ? null : checkpoints.LastSaved;

    public Task<Dictionary<string, TensorPayload>> GetParametersAsync()
    {
        HeardFromClient();
        var running = job ?? throw new InvalidOperationException($"job '{Name}' is {state}; it has no parameters.");
        return running.ExportParametersAsync(transports.Message);
    }

    public async Task<JobStatus> StopAsync(bool discard = false)
    {
        if (job is { } running && !discard) await SaveIfUnsaved(running);   // throws, and the job keeps running, when the save fails
        await ReleaseAsync();
        await GrainFactory.GetGrain<IClusterGrain>(IClusterGrain.Key).RemoveJobAsync(Name);
        if (state != JobState.NotStarted) state = JobState.Stopped;
        log.LogInformation("Job {Job} stopped after {Steps} steps", Name, steps);
        // The activation stays, Stopped: a client still stepping the job must learn that it was stopped, not meet a
        // fresh activation that looks like a coordinator lost with its silo (and resume the job).
        return Status();
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            await ReleaseAsync();
        }
        catch (Exception e)   // e.g. the silo is shutting down and workers elsewhere are unreachable
        {
            log.LogWarning(e, "Job {Job}: could not stop every worker while deactivating ({Reason})", Name, reason.Description);
        }
    }

    /// <summary>Releases the running job, if any (<see cref="JobLauncher.ReleaseAsync"/>), and its lease check.</summary>
    async Task ReleaseAsync()
    {
        leaseCheck?.Dispose();
        leaseCheck = null;
        if (job is not { } running) return;
        job = null;
        await launcher.ReleaseAsync(running, running.Workers);
    }
}
