using Microsoft.Extensions.Logging;
using Orchestrator.Grains.Execution;
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
    ILogger<CoordinatorGrain> log) : Grain, ICoordinatorGrain
{
    /// <summary>Where the trunk, the loss and the gathers run: chosen when the job is built.</summary>
    string trunkDevice = "cpu";

    JobSpec? spec;
    CheckpointStore? checkpoints;
    CheckpointSchedule? schedule;
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
    Trunk? trunk;
    IBatchSource? source;
    /// <summary>On a GPU trunk, marks where a step's verdict copy was queued (null on the CPU, where copies are synchronous).</summary>
    StreamFence? fence;
    JobWorker[] workers = [];
    JobState state = JobState.NotStarted;
    long steps;
    double? lastLoss;
    string? error;

    string Name => this.GetPrimaryKeyString();
    DeviceExecutor TrunkExecutor => executors.For(trunkDevice);

    /// <summary>This silo's first GPU if it advertises one, else its CPU.</summary>
    string LocalTrunkDevice() =>
        ClusterDevices.Discover(membership, metadata).Where(d => d.Silo == transports.SiloName).Select(d => d.Device)
            .FirstOrDefault(Kernels.Devices.IsGpuName) ?? "cpu";

    public async Task<JobStatus> StartAsync(JobSpec newSpec, bool resume = false)
    {
        newSpec.Validate();
        if (newSpec.Name != Name)
            throw new JobSpecException(nameof(JobSpec.Name), $"'{newSpec.Name}' is not this coordinator's job '{Name}'.");
        if (state == JobState.Running)
            throw new InvalidOperationException($"job '{Name}' is already running; stop it before starting it again.");
        await ReleaseAsync();
        checkpointNote = null;
        var store = newSpec.Checkpoint.Directory is { } root ? new CheckpointStore(root) : null;
        var restore = resume ? await Task.Run(() => LatestCheckpoint(newSpec, store)) : null;
        await BuildAsync(newSpec, restore, excluded: new HashSet<string>());
        (spec, state, steps, lastLoss, error) = (newSpec, JobState.Running, restore?.Manifest.Step ?? 0, null, null);
        (checkpoints, schedule, lastCheckpoint) = (store, new CheckpointSchedule(newSpec.Checkpoint.EverySteps), restore?.Manifest.Step);
        if (steps >= newSpec.Steps) state = JobState.Finished;
        await GrainFactory.GetGrain<IClusterGrain>(IClusterGrain.Key).AddJobAsync(Name);
        log.LogInformation("Job {Job} started on {Silo} with {Workers} workers: {Assignment}", Name, transports.SiloName, workers.Length,
            string.Join(", ", workers.Select(w => $"{w.Info.Silo}/{w.Info.Device} {w.Groups} ({w.Transport.Kind})")));
        return Status();
    }

    /// <summary>
    /// Reads the data, builds the trunk and every worker, from the seed or from <paramref name="restore"/>, on the
    /// devices of the active silos not in <paramref name="excluded"/>. Nothing is left behind when it throws.
    /// </summary>
    async Task BuildAsync(JobSpec job, Checkpoint? restore, IReadOnlySet<string> excluded)
    {
        trunkDevice = LocalTrunkDevice();
        var planned = Plan(job, excluded);
        try
        {
            var device = TrunkExecutor.TorchDevice;
            (trunk, source, fence) = await TrunkExecutor.RunAsync(() =>
            {
                var data = BatchSources.Create(job, device);   // reads and checks data files before any worker is built
                var model = restore is null
                    ? new Trunk(job.Shape, job.Seed, Kernels.DTypeNames.Parse(job.DType), device, job.Optimizer)
                    : restore.CreateTrunk(device);
                return (model, data, device.type == DeviceType.CUDA ? new StreamFence(device.index) : null);
            });
            workers = planned;
            long? restoreStep = restore?.Manifest.Step;
            await Task.WhenAll(workers.Select(w => w.Grain.InitAsync(new WorkerSetup(job, w.Groups.First, w.Groups.Count, restoreStep, incarnation))));
        }
        catch
        {
            await ReleaseAsync();
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

    /// <summary>Devices the spec selects, WorkersPerDevice slots each, contiguous balanced group ranges over the slots.</summary>
    JobWorker[] Plan(JobSpec job, IReadOnlySet<string> excluded)
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
            var transport = transports.ToWorker(slots[i], trunkDevice, job.SliceBytes(groups.Count), job.Transport);
            if (transport is MessageTensorTransport message)
                message.CheckFits(job.SliceBytes(groups.Count), $"slice ({job.BatchSize}, {groups.Count}, D) {job.DType} of worker {key}");
            var info = new WorkerInfo(key.ToString(), key.Silo, key.Device, groups.First, groups.Count, transport.Kind.ToString());
            return new JobWorker(GrainFactory.GetGrain<IWorkerGrain>(key.ToString()), info, groups, transport);
        }).ToArray();
    }

    public async Task<StepMetrics> StepAsync()
    {
        if (state != JobState.Running)
            throw new InvalidOperationException($"job '{Name}' is {state}{(error is null ? "" : $" ({error})")}; start it first.");
        while (true)
        {
            try
            {
                var metrics = await Step(spec!, trunk!, source!);
                (steps, lastLoss) = (steps + 1, metrics.Loss);
                if (steps >= spec!.Steps) state = JobState.Finished;
                log.LogDebug("Job {Job} step {Step} loss {Loss} in {Ms} ms", Name, metrics.Step, metrics.Loss, metrics.TotalMs);
                if (checkpoints is not null && (schedule!.IsDue(steps) || state == JobState.Finished) && lastCheckpoint != steps)
                    await SaveCheckpoint();
                return metrics;
            }
            catch (WorkersLostException lost) when (recoveries < MaxRecoveries)
            {
                // Some workers applied this step's update and others did not: only a checkpoint is consistent again.
                log.LogWarning(lost, "Job {Job} lost workers on {Silos} at step {Step}; restoring from the last checkpoint", Name,
                    string.Join(", ", lost.Silos), steps);
                try
                {
                    await RecoverAsync(lost.Silos);
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
    async Task RecoverAsync(IReadOnlyCollection<string> lostSilos)
    {
        var job = spec!;
        state = JobState.Recovering;
        excludedSilos.UnionWith(lostSilos);
        workers = workers.Where(w => !excludedSilos.Contains(w.Info.Silo)).ToArray();
        try
        {
            await ReleaseAsync();
        }
        catch (Exception e)   // a worker may die while we stop it; its silo's membership will catch up
        {
            log.LogWarning(e, "Job {Job}: could not stop every surviving worker before recovering", Name);
        }
        // Until membership declares the lost silos dead, the grain directory may still route to them: wait for that,
        // then build, retrying while calls still reach for the dead silos.
        var deadline = DateTime.UtcNow + RecoveryTimeout;
        await WaitUntilGone(lostSilos, deadline);
        var restore = checkpoints is not null && checkpoints.List(Name).Count > 0 ? await Task.Run(() => NewestIntact(checkpoints)) : null;
        while (true)
        {
            try
            {
                await BuildAsync(job, restore, excludedSilos);
                break;
            }
            catch (Exception e) when (WorkersLostException.IsSiloLoss(e) && DateTime.UtcNow < deadline)
            {
                log.LogInformation("Job {Job}: the cluster is still settling ({Problem}); retrying", Name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
        (state, steps, lastCheckpoint) = (JobState.Running, restore?.Manifest.Step ?? 0, restore?.Manifest.Step);
        recoveries++;
        log.LogInformation("Job {Job} recovered at step {Step} with {Workers} workers: {Assignment}", Name, steps, workers.Length,
            string.Join(", ", workers.Select(w => $"{w.Info.Silo}/{w.Info.Device} {w.Groups}")));
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

    /// <summary>One <see cref="TrainingStep"/> with this job's workers as its towers, and what the exchange moved.</summary>
    async Task<StepMetrics> Step(JobSpec job, Trunk model, IBatchSource data)
    {
        var exchange = new WorkerExchange(workers, TrunkExecutor, membership, job.Shape.Input, job.Shape.Output);
        var metrics = await new TrainingStep(job, model, data, fence, TrunkExecutor).RunAsync(steps, exchange);
        return metrics with { ScatterMs = exchange.ScatterMs, GatherMs = exchange.GatherMs, BytesMoved = exchange.Bytes };
    }

    public async Task<long> CheckpointAsync()
    {
        if (trunk is null) throw new InvalidOperationException($"job '{Name}' is {state}; there is nothing to checkpoint.");
        if (checkpoints is null) throw new JobSpecException("Checkpoint.Directory", $"job '{Name}' has no checkpoint directory.");
        if (lastCheckpoint != steps) await SaveCheckpoint();
        return steps;
    }

    /// <summary>
    /// Every worker writes its shard and this grain the trunk into one pending checkpoint, which becomes visible only
    /// when all parts are on disk (a crash leaves the previous checkpoint as the latest); then old ones are pruned.
    /// </summary>
    async Task SaveCheckpoint()
    {
        var (store, job, model) = (checkpoints!, spec!, trunk!);
        using var pending = await Task.Run(() => store.Begin(job, steps, model.Optimizer!.StepCount));
        var shards = await Task.WhenAll(workers.Select(w => w.Grain.CheckpointAsync(pending.Ticket)));
        using var trunkState = await TrunkExecutor.RunAsync(() => ShardState.Export(model));
        await Task.Run(() =>
        {
            pending.Commit(pending.WriteTrunk(trunkState), shards);
            store.Prune(Name, job.Checkpoint.Keep);
        });
        lastCheckpoint = steps;
        log.LogInformation("Job {Job} checkpointed at step {Step} in {Directory}", Name, steps, store.JobDirectory(Name));
    }

    public Task<JobStatus> GetStatusAsync() => Task.FromResult(Status());

    JobStatus Status() =>
        new(Name, state, steps, spec?.Steps ?? 0, lastLoss, workers.Select(w => w.Info).ToArray(), error, transports.SiloName, lastCheckpoint, recoveries, checkpointNote);

    public async Task<Dictionary<string, TensorPayload>> GetParametersAsync()
    {
        var model = trunk ?? throw new InvalidOperationException($"job '{Name}' is {state}; it has no parameters.");
        var exports = await Task.WhenAll(workers.Select(w => w.Grain.ExportAsync()));
        var message = transports.Message;
        return await TrunkExecutor.RunAsync(() =>
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

    public async Task StopAsync()
    {
        await ReleaseAsync();
        await GrainFactory.GetGrain<IClusterGrain>(IClusterGrain.Key).RemoveJobAsync(Name);
        state = JobState.Stopped;
        log.LogInformation("Job {Job} stopped after {Steps} steps", Name, steps);
        this.DeactivateOnIdle();
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

    /// <summary>
    /// Stops the workers and frees the trunk and the data. CUDA IPC links close their mappings of the workers' buffers
    /// before the workers free them, and free their own buffers after the workers closed theirs.
    /// </summary>
    async Task ReleaseAsync()
    {
        var (oldWorkers, oldTrunk, oldSource, oldFence) = (workers, trunk, source, fence);
        (workers, trunk, source, fence) = ([], null, null, null);
        var links = oldWorkers.Select(w => w.Transport).OfType<IpcTensorTransport>().ToArray();
        try
        {
            if (links.Length > 0) await TrunkExecutor.RunAsync(() => Array.ForEach(links, link => link.ReleaseImports()));
            await Task.WhenAll(oldWorkers.Select(w => w.Grain.StopAsync(incarnation)));
        }
        finally
        {
            if (links.Length > 0 || oldTrunk is not null || oldSource is not null)
                await TrunkExecutor.RunAsync(() =>
                {
                    Array.ForEach(links, link => link.Dispose());
                    oldTrunk?.Dispose();
                    oldSource?.Dispose();
                    oldFence?.Dispose();
                });
        }
    }
}
