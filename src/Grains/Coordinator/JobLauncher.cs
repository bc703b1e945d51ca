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

namespace Orchestrator.Grains;

/// <summary>
/// Builds a job's parts on the cluster and releases them, for one coordinator activation (<paramref name="owner"/>):
/// the trunk and the data on this silo's first GPU (its CPU when it has none), and the workers where
/// <see cref="JobPlanner"/> puts them, each with the transport <see cref="TensorTransports.ToWorker"/> chooses.
/// </summary>
internal sealed class JobLauncher(
    DeviceExecutors executors,
    TensorTransports transports,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    JobMemoryLimit memory,
    IGrainFactory grains,
    Guid owner)
{
    /// <summary>
    /// Reads the data, builds the trunk and every worker, from the seed or from <paramref name="restore"/>, on the
    /// devices of the active silos not in <paramref name="excluded"/>. Nothing is left behind when it throws.
    /// </summary>
    public async Task<RunningJob> BuildAsync(JobSpec spec, CheckpointStore? store, Checkpoint? restore, IReadOnlySet<string> excluded)
    {
        var executor = executors.For(LocalTrunkDevice());
        var workers = Place(spec, executor.Device, excluded);
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
                    device.type == DeviceType.CUDA ? new StreamFence(device.index) : null, workers,
                    transports.ExpectChannelTransfers(workers.Max(w => spec.SliceBytes(w.Plan.Groups.Count))));
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
            var from = (store, restore) is ({ } root, { } checkpoint) ? new WorkerSetup.Checkpoint(root.Root, checkpoint.Manifest.Step) : null;
            await Task.WhenAll(workers.Select(w => w.Grain.InitAsync(new WorkerSetup(spec.Name, spec.Towers(), w.Plan.Groups, owner,
                w.Plan.DeviceGroups, MemoryNeed.Towers(spec, w.Plan.DeviceGroups), spec.SliceBytes(w.Plan.Groups.Count), from))));
            return built;
        }
        catch
        {
            await ReleaseAsync(built, built.Workers);
            throw;
        }
    }

    /// <summary>
    /// Stops <paramref name="stopping"/> (a job's workers, or the survivors of a loss) and frees the trunk and the data.
    /// CUDA IPC links close their mappings of the workers' buffers before the workers free them, and free their own
    /// buffers after the workers closed theirs.
    /// </summary>
    public async Task ReleaseAsync(RunningJob running, JobWorker[] stopping)
    {
        var links = stopping.Select(w => w.Transport).OfType<IpcTensorTransport>().ToArray();
        try
        {
            if (links.Length > 0) await running.Executor.RunAsync(() => Array.ForEach(links, link => link.ReleaseImports()));
            await Task.WhenAll(stopping.Select(w => w.Grain.StopAsync(owner)));
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

    /// <summary>This silo's first GPU if it advertises one, else its CPU.</summary>
    string LocalTrunkDevice() =>
        ClusterDevices.Discover(membership, metadata).Where(d => d.Silo == transports.SiloName).Select(d => d.Device)
            .FirstOrDefault(Kernels.Devices.IsGpuName) ?? "cpu";

    /// <summary>The planned workers, each with the transport from <paramref name="trunkDevice"/> to it.</summary>
    JobWorker[] Place(JobSpec job, string trunkDevice, IReadOnlySet<string> excluded) =>
        JobPlanner.Plan(job, ClusterDevices.Discover(membership, metadata), excluded).Select(plan =>
        {
            long sliceBytes = job.SliceBytes(plan.Groups.Count);
            var transport = transports.ToWorker(plan.Device, trunkDevice, sliceBytes, job.Transport,
                $"slice ({job.BatchSize}, {plan.Groups.Count}, D) {Kernels.DTypeNames.Name(job.DType)} of worker {plan.Key}");
            return new JobWorker(grains.GetGrain<IWorkerGrain>(plan.Key.ToString()), plan, transport);
        }).ToArray();
}
