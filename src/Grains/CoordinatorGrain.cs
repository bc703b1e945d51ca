using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orchestrator.Kernels.Cuda;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using Orleans.Runtime.MembershipService.SiloMetadata;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains;

/// <summary>
/// The coordinator of one job: it places the workers, owns the trunk, the data and the loss on this silo's first GPU
/// (its CPU when it has none), runs each <see cref="TrainingStep"/> with the workers as its towers
/// (<see cref="WorkerExchange"/>: tensors reach workers of this silo by reference and workers elsewhere through the
/// transport <see cref="TensorTransports.ToWorker"/> chose for each), checkpoints, and recovers from lost silos.
/// </summary>
[KeepAlive]
public sealed class CoordinatorGrain(
    DeviceExecutors executors,
    TensorTransports transports,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    PathRoots paths,
    JobMemoryLimit memory,
    ILogger<CoordinatorGrain> log) : Grain, ICoordinatorGrain
{
    /// <summary>The job's parts on the cluster while it runs (null before it starts, after it stops, while it recovers).</summary>
    RunningJob? job;
    /// <summary>The steps the last started spec asks for, for the status.</summary>
    int stepsPlanned;
    long? lastCheckpoint;
    /// <summary>Which checkpoint the job continued from when newer ones were damaged, and why they were skipped.</summary>
    string? checkpointNote;
    /// <summary>Silos whose workers were lost; never used again by this job.</summary>
    readonly HashSet<string> excludedSilos = [];
    /// <summary>This activation's identity: workers obey stops from the coordinator activation they serve only.</summary>
    readonly Guid incarnation = Guid.NewGuid();
    int recoveries;
    const int MaxRecoveries = 8;
    /// <summary>How long a recovery may wait for membership to declare lost silos dead and for the survivors to settle.</summary>
    static readonly TimeSpan RecoveryTimeout = TimeSpan.FromMinutes(2);
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

    string Name => this.GetPrimaryKeyString();

    /// <summary>The running job, or an error saying why there is none.</summary>
    RunningJob Running => job ?? throw new InvalidOperationException($"job '{Name}' is {state}{(error is null ? "" : $" ({error})")}; start it first.");

    /// <summary>This silo's first GPU if it advertises one, else its CPU.</summary>
    string LocalTrunkDevice() =>
        ClusterDevices.Discover(membership, metadata).Where(d => d.Silo == transports.SiloName).Select(d => d.Device)
            .FirstOrDefault(Kernels.Devices.IsGpuName) ?? "cpu";

    public async Task<JobStatus> StartAsync(JobSpec newSpec, bool resume = false)
    {
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
        checkpointNote = null;
        var store = newSpec.Checkpoint.Directory is { } root ? new CheckpointStore(root) : null;
        var restore = resume ? await Task.Run(() => LatestCheckpoint(newSpec, store)) : null;
        var started = await BuildAsync(newSpec, store, restore, excluded: new HashSet<string>());
        (job, stepsPlanned, state, steps, lastLoss, error, lastEval, endNote) =
            (started, newSpec.Steps, JobState.Running, restore?.Manifest.Step ?? 0, null, null, null, null);
        lastCheckpoint = restore?.Manifest.Step;
        if (steps >= newSpec.Steps) state = JobState.Finished;
        HeardFromClient();
        var period = TimeSpan.FromSeconds(Math.Clamp(newSpec.LeaseSeconds / 4.0, 0.5, 10));
        leaseCheck = this.RegisterGrainTimer(CheckLeaseAsync, new GrainTimerCreationOptions(period, period) { Interleave = false });
        await GrainFactory.GetGrain<IClusterGrain>(IClusterGrain.Key).AddJobAsync(Name);
        log.LogInformation("Job {Job} started on {Silo} with {Workers} workers: {Assignment}", Name, transports.SiloName, started.Workers.Length,
            string.Join(", ", started.Workers.Select(w => $"{w.Info.Silo}/{w.Info.Device} {w.Groups} ({w.Transport.Kind})")));
        return Status();
    }

    /// <summary>
    /// Reads the data, builds the trunk (on this silo's first GPU, else its CPU) and every worker, from the seed or from
    /// <paramref name="restore"/>, on the devices of the active silos not in <paramref name="excluded"/>. Nothing is left
    /// behind when it throws.
    /// </summary>
    async Task<RunningJob> BuildAsync(JobSpec spec, CheckpointStore? store, Checkpoint? restore, IReadOnlySet<string> excluded)
    {
        var executor = executors.For(LocalTrunkDevice());
        var planned = Plan(spec, executor.Device, excluded);
        var device = executor.TorchDevice;
        var built = await executor.RunAsync(() =>
        {
            var (available, source) = memory.Available(device);
            // The synthetic data's teacher is a frozen copy of every tower, on this device too.
            var teacher = spec.Data.Source == "synthetic" ? MemoryNeed.Towers(spec, spec.Shape.Groups) with { Optimizer = 0 } : default;
            (MemoryNeed.Trunk(spec) + teacher).Check(available, $"{transports.SiloName}/{executor.Device}", source, $"job '{spec.Name}''s trunk and data");
            var data = BatchSources.Create(spec, device);   // reads and checks data files before any worker is built
            HeldOutData? heldOut = null;
            try
            {
                heldOut = BatchSources.HeldOut(spec, data);
                var model = restore is null
                    ? new Trunk(spec.Shape, spec.Seed, spec.DType, device, spec.Optimizer)
                    : restore.CreateTrunk(device);
                return new RunningJob(spec, store, executor, model, data, heldOut, restore?.Manifest.Validation,
                    device.type == DeviceType.CUDA ? new StreamFence(device.index) : null, planned,
                    transports.ExpectChannelTransfers(planned.Max(w => spec.SliceBytes(w.Groups.Count))));
            }
            catch
            {
                heldOut?.Dispose();
                data.Dispose();
                throw;
            }
        });
        try
        {
            long? restoreStep = restore?.Manifest.Step;
            int OnDevice(JobWorker w) => planned.Where(o => (o.Info.Silo, o.Info.Device) == (w.Info.Silo, w.Info.Device)).Sum(o => o.Groups.Count);
            await Task.WhenAll(planned.Select(w =>
                w.Grain.InitAsync(new WorkerSetup(spec, w.Groups.First, w.Groups.Count, restoreStep, incarnation, OnDevice(w)))));
            return built;
        }
        catch
        {
            await ReleaseAsync(built, built.Workers);
            throw;
        }
    }

    /// <summary>The job's newest intact checkpoint, checked to train the same model as <paramref name="job"/>.</summary>
    Checkpoint LatestCheckpoint(JobSpec job, CheckpointStore? store)
    {
        if (store is null)
            throw new JobSpecException("Checkpoint.Directory", "is required to resume a job.");
        if (store.List(Name).Count == 0)
            throw new InvalidOperationException($"job '{Name}' has no checkpoint under '{store.JobDirectory(Name)}' to resume from.");
        var checkpoint = NewestIntact(store);
        if (checkpoint.Manifest.Job.ModelDifference(job) is { } field)
            throw new JobSpecException(field, $"differs from the checkpoint at step {checkpoint.Manifest.Step}, which trains another model; " +
                                              "resume with the spec it was saved with (only Steps, Devices, Transport and Checkpoint may change).");
        return checkpoint;
    }

    /// <summary>
    /// The newest checkpoint that verifies; each newer one that does not is set aside, logged, and named in the status
    /// (<see cref="JobStatus.CheckpointNote"/>), so the user sees which step training continues from and why.
    /// </summary>
    Checkpoint NewestIntact(CheckpointStore store)
    {
        var skipped = new List<string>();
        var checkpoint = store.OpenNewestIntact(Name, (step, why) =>
        {
            log.LogWarning("Job {Job}: the checkpoint at step {Step} is damaged and was set aside: {Problem}", Name, step, why);
            skipped.Add($"step {step} ({why})");
        });
        checkpointNote = skipped.Count == 0 ? null
            : $"continued from step {checkpoint.Manifest.Step}; newer checkpoints were damaged and set aside as .damaged-*: {string.Join("; ", skipped)}";
        return checkpoint;
    }

    /// <summary>
    /// Devices the spec selects, WorkersPerDevice slots each, contiguous balanced group ranges over the slots, each with
    /// the transport from <paramref name="trunkDevice"/> to it.
    /// </summary>
    JobWorker[] Plan(JobSpec job, string trunkDevice, IReadOnlySet<string> excluded)
    {
        var available = ClusterDevices.Discover(membership, metadata).Where(d => !excluded.Contains(d.Silo)).ToArray();
        var chosen = ClusterDevices.Select(available, job.Devices);
        if (chosen.Length == 0)
            throw new JobSpecException(nameof(JobSpec.Devices),
                $"no device in the cluster matches [{string.Join(", ", job.Devices)}]; it has [{string.Join(", ", available.AsEnumerable())}].");
        var slots = chosen.SelectMany(d => Enumerable.Repeat(d, job.WorkersPerDevice)).ToArray();
        return ShardAssignment.Assign(job.Shape.Groups, slots.Length).Select((groups, i) =>
        {
            var key = new WorkerKey(slots[i].Silo, slots[i].Device, job.Name, i);
            var transport = transports.ToWorker(slots[i], trunkDevice, job.SliceBytes(groups.Count), job.Transport,
                $"slice ({job.BatchSize}, {groups.Count}, D) {Kernels.DTypeNames.Name(job.DType)} of worker {key}");
            var info = new WorkerInfo(key.ToString(), key.Silo, key.Device, groups.First, groups.Count, transport.Kind);
            return new JobWorker(GrainFactory.GetGrain<IWorkerGrain>(key.ToString()), info, groups, transport);
        }).ToArray();
    }

    public async Task<StepMetrics> StepAsync()
    {
        if (state != JobState.Running)
            throw new InvalidOperationException($"job '{Name}' is {state}{(error is null ? "" : $" ({error})")}; start it first.");
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
                if (running.Checkpoints is not null && (running.Schedule.IsDue(steps) || state == JobState.Finished) && lastCheckpoint != steps)
                    await SaveCheckpoint(running);
                return metrics;
            }
            catch (WorkersLostException lost) when (recoveries < MaxRecoveries)
            {
                // Some workers applied this step's update and others did not: only a checkpoint is consistent again.
                log.LogWarning(lost, "Job {Job} lost workers on {Silos} at step {Step}; restoring from the last checkpoint", Name,
                    string.Join(", ", lost.Silos), steps);
                try
                {
                    await RecoverAsync(running, lost.Silos);
                }
                catch (Exception e)
                {
                    (state, error) = (JobState.Failed, $"lost workers on {string.Join(", ", lost.Silos)} and could not recover: {e.Message}");
                    log.LogError(e, "Job {Job} could not recover", Name);
                    throw new InvalidOperationException(error, e);
                }
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

    /// <summary>
    /// Rebuilds the job without the lost silos: every shard and the trunk from the last checkpoint (or from the seed
    /// when there is none yet), the groups spread over the devices left. Training continues at the checkpoint's step,
    /// and since batch i depends only on i, the result equals a run that was never interrupted.
    /// </summary>
    async Task RecoverAsync(RunningJob lostJob, IReadOnlyCollection<string> lostSilos)
    {
        state = JobState.Recovering;
        excludedSilos.UnionWith(lostSilos);
        job = null;
        try
        {
            // Only the survivors are stopped: a call to a lost worker would wait for its silo.
            await ReleaseAsync(lostJob, lostJob.Workers.Where(w => !excludedSilos.Contains(w.Info.Silo)).ToArray());
        }
        catch (Exception e)   // a worker may die while we stop it; its silo's membership will catch up
        {
            log.LogWarning(e, "Job {Job}: could not stop every surviving worker before recovering", Name);
        }
        // Until membership declares the lost silos dead, the grain directory may still route to them: wait for that,
        // then build, retrying while calls still reach for the dead silos.
        var deadline = DateTime.UtcNow + RecoveryTimeout;
        await WaitUntilGone(lostSilos, deadline);
        var store = lostJob.Checkpoints;
        var restore = store is not null && store.List(Name).Count > 0 ? await Task.Run(() => NewestIntact(store)) : null;
        RunningJob rebuilt;
        while (true)
        {
            try
            {
                rebuilt = await BuildAsync(lostJob.Spec, store, restore, excludedSilos);
                break;
            }
            catch (Exception e) when (WorkersLostException.IsSiloLoss(e) && DateTime.UtcNow < deadline)
            {
                log.LogInformation("Job {Job}: the cluster is still settling ({Problem}); retrying", Name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
        (job, state, steps, lastCheckpoint) = (rebuilt, JobState.Running, restore?.Manifest.Step ?? 0, restore?.Manifest.Step);
        recoveries++;
        log.LogInformation("Job {Job} recovered at step {Step} with {Workers} workers: {Assignment}", Name, steps, rebuilt.Workers.Length,
            string.Join(", ", rebuilt.Workers.Select(w => $"{w.Info.Silo}/{w.Info.Device} {w.Groups}")));
    }

    /// <summary>Waits until no silo in <paramref name="silos"/> is active; throws a clear error at the deadline.</summary>
    async Task WaitUntilGone(IReadOnlyCollection<string> silos, DateTime deadline)
    {
        while (membership.CurrentSnapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && silos.Contains(m.Name)))
        {
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException($"silos {string.Join(", ", silos)} stopped answering but were not declared dead within " +
                                           $"{RecoveryTimeout.TotalSeconds:F0} s; the job cannot be rebuilt safely.");
            await Task.Delay(TimeSpan.FromMilliseconds(250));
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
        if (eval.Best && running.Checkpoints is not null)
        {
            if (lastCheckpoint != steps) await SaveCheckpoint(running, best: true);
            else await Task.Run(() => Prune(running.Checkpoints, running, best: true));
        }
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

    public async Task<long> CheckpointAsync()
    {
        HeardFromClient();
        var running = job ?? throw new InvalidOperationException($"job '{Name}' is {state}; there is nothing to checkpoint.");
        if (running.Checkpoints is null) throw new JobSpecException("Checkpoint.Directory", $"job '{Name}' has no checkpoint directory.");
        if (lastCheckpoint != steps) await SaveCheckpoint(running);
        return steps;
    }

    /// <summary>
    /// Every worker writes its shard and this grain the trunk into one pending checkpoint, which becomes visible only
    /// when all parts are on disk (a crash leaves the previous checkpoint as the latest); then it is marked "best"
    /// when <paramref name="best"/>, and old ones are pruned.
    /// </summary>
    async Task SaveCheckpoint(RunningJob running, bool best = false)
    {
        var store = running.Checkpoints ?? throw new InvalidOperationException($"job '{Name}' has no checkpoint directory.");
        using var pending = await Task.Run(() => store.Begin(running.Spec, steps, running.Trunk.Optimizer!.StepCount));
        var shards = await Task.WhenAll(running.Workers.Select(w => w.Grain.CheckpointAsync(pending.Ticket)));
        using var trunkState = await running.Executor.RunAsync(() => ShardState.Export(running.Trunk));
        await Task.Run(() =>
        {
            pending.Commit(pending.WriteTrunk(trunkState), shards, running.EarlyStopping.State);
            Prune(store, running, best);
        });
        lastCheckpoint = steps;
        log.LogInformation("Job {Job} checkpointed at step {Step} in {Directory}", Name, steps, store.JobDirectory(Name));
    }

    /// <summary>
    /// Marks this step's checkpoint "best" when <paramref name="best"/>, then prunes to Checkpoint.Keep: marking comes
    /// first, since pruning keeps whatever "best" names and would keep the old one.
    /// </summary>
    void Prune(CheckpointStore store, RunningJob running, bool best)
    {
        if (best) store.MarkBest(Name, steps);
        store.Prune(Name, running.Spec.Checkpoint.Keep);
    }

    /// <summary>The job's workers as the towers of one step or evaluation (it counts that exchange's traffic).</summary>
    WorkerExchange Exchange(RunningJob running) =>
        new(running.Workers, running.Executor, membership, running.Spec.Shape.Input, running.Spec.Shape.Output);

    public Task<JobStatus> GetStatusAsync() => Task.FromResult(Status());

    public Task<JobStatus> RenewLeaseAsync(Guid client)
    {
        if (client == incarnation && job is not null) HeardFromClient();
        return Task.FromResult(Status());
    }

    JobStatus Status() =>
        new(Name, state, steps, stepsPlanned, lastLoss, (job?.Workers ?? []).Select(w => w.Info).ToArray(), error, transports.SiloName, lastCheckpoint,
            recoveries, checkpointNote, incarnation, lastEval, endNote);

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
            saved = $"saving a checkpoint failed ({e.Message}); the last one is at step {lastCheckpoint?.ToString() ?? "(none)"}";
        }
        await ReleaseAsync();
        (state, error) = (JobState.Abandoned,
            $"no client was heard from for {quiet.TotalSeconds:F0} s (lease {running.Spec.LeaseSeconds} s) at step {steps}; {saved}");
    }

    /// <summary>Saves a checkpoint of a running job that has a directory unless its current step is saved; returns the newest saved step.</summary>
    async Task<long?> SaveIfUnsaved(RunningJob running)
    {
        if (running.Checkpoints is null) return null;
        if (state is JobState.Running && lastCheckpoint != steps) await SaveCheckpoint(running);
        return lastCheckpoint;
    }

    public async Task<Dictionary<string, TensorPayload>> GetParametersAsync()
    {
        HeardFromClient();
        var running = job ?? throw new InvalidOperationException($"job '{Name}' is {state}; it has no parameters.");
        var model = running.Trunk;
        var exports = await Task.WhenAll(running.Workers.Select(w => w.Grain.ExportAsync()));
        var message = transports.Message;
        return await running.Executor.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            Tensor Towers(string name) => cat(exports.Select(e => message.Unpack(e[name], CPU)).ToArray(), 0);
            return new Dictionary<string, TensorPayload>
            {
                [ParameterNames.TrunkWeight] = message.Pack(model.Weight),
                [ParameterNames.TrunkBias] = message.Pack(model.Bias),
                [ParameterNames.TowerGateUp] = message.Pack(Towers(ParameterNames.TowerGateUp)),
                [ParameterNames.TowerDown] = message.Pack(Towers(ParameterNames.TowerDown)),
            };
        });
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

    /// <summary>Releases the running job, if any (<see cref="ReleaseAsync(RunningJob, JobWorker[])"/>), and its lease check.</summary>
    async Task ReleaseAsync()
    {
        leaseCheck?.Dispose();
        leaseCheck = null;
        if (job is not { } running) return;
        job = null;
        await ReleaseAsync(running, running.Workers);
    }

    /// <summary>
    /// Stops <paramref name="stopping"/> (a job's workers, or the survivors of a loss) and frees the trunk and the data.
    /// CUDA IPC links close their mappings of the workers' buffers before the workers free them, and free their own
    /// buffers after the workers closed theirs.
    /// </summary>
    async Task ReleaseAsync(RunningJob running, JobWorker[] stopping)
    {
        var links = stopping.Select(w => w.Transport).OfType<IpcTensorTransport>().ToArray();
        try
        {
            if (links.Length > 0) await running.Executor.RunAsync(() => Array.ForEach(links, link => link.ReleaseImports()));
            await Task.WhenAll(stopping.Select(w => w.Grain.StopAsync(incarnation)));
        }
        finally
        {
            await running.Executor.RunAsync(() =>
            {
                Array.ForEach(links, link => link.Dispose());
                running.Dispose();
            });
            running.ChannelAnnouncement.Dispose();
        }
    }
}
