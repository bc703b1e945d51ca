using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Client.Gpu;

/// <summary>
/// The distributed equality check on a GPU: two silos share one GPU, a job is sharded over a worker on each (one
/// reached by reference, the other through each transport in turn: Orleans messages, the process registry and the TCP
/// data channel between two silos of this process, CUDA IPC between this process and a silo process beside it), and
/// after a few steps its losses and parameters must equal the single-process trainer's on the CPU in the same dtype.
/// </summary>
public static class ClusterGpuCheck
{
    public static async Task<List<CheckResult>> RunAsync(string device, IReadOnlyList<string> dtypes, Action<string>? progress = null)
    {
        var results = new List<CheckResult>();
        await using (var silos = await ClusterConnection.StartEmbeddedAsync(new ClusterConnectionOptions(), device, silos: 2, verbose: false))
            foreach (var transport in new[] { "message", "process", "channel" })
                results.AddRange(await CheckAsync(silos, device, dtypes, transport, "2 silos of one process", progress));
        // CUDA IPC needs a GPU; on the CPU the two processes exchange over the data channel.
        await using (var processes = await ClusterConnection.StartEmbeddedAsync(new ClusterConnectionOptions(), device, silos: 1, verbose: false, processes: 1))
            results.AddRange(await CheckAsync(processes, device, dtypes, Kernels.Devices.IsGpuName(device) ? "ipc" : "channel", "2 silo processes", progress));
        return results;
    }

    static async Task<List<CheckResult>> CheckAsync(ClusterConnection cluster, string device, IReadOnlyList<string> dtypes, string transport,
        string silos, Action<string>? progress)
    {
        var results = new List<CheckResult>();
        foreach (var dtype in dtypes)
        {
            progress?.Invoke($"cluster {dtype} {transport}");
            int seed = Random.Shared.Next();
            var spec = new JobSpec
            {
                Name = $"gpu-check-{dtype}-{transport}-{seed}",
                Shape = new ModelShape { Groups = 6, Features = 48, Input = 64, Hidden = 96, Output = 32 },
                BatchSize = 200,
                DType = dtype,
                Steps = 5,
                Seed = seed,
                Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
                Devices = [device],
                Transport = transport,
            };
            results.AddRange(await CompareAsync(cluster, spec, $"{silos} sharing one GPU ({transport})"));
        }
        return results;
    }

    static async Task<List<CheckResult>> CompareAsync(ClusterConnection cluster, JobSpec spec, string setup)
    {
        double tolerance = GpuCheck.Tolerance(Kernels.DTypeNames.Parse(spec.DType));
        string shape = $"{setup}, {spec.Shape.Groups} groups, {spec.Steps} steps";
        using var reference = new InProcessTrainer(spec);
        var coordinator = cluster.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        var results = new List<CheckResult>();
        try
        {
            if (status.Workers.Select(w => w.Silo).Distinct().Count() != 2)
                throw new InvalidOperationException($"expected workers on both silos, got {string.Join(", ", status.Workers.Select(w => w.Silo))}.");
            var remote = status.Workers.Single(w => w.Silo != status.CoordinatorSilo).Transport;
            if (remote != spec.Transport)
                throw new InvalidOperationException($"the remote worker uses {remote}, not {spec.Transport}.");
            double worst = 0;
            for (int step = 0; step < spec.Steps; step++)
            {
                double loss = (await coordinator.StepAsync()).Loss, expected = reference.Step().Loss;
                worst = Math.Max(worst, Math.Abs(loss - expected) / Math.Abs(expected));
            }
            results.Add(new(spec.DType, shape, "cluster loss, every step", worst, tolerance));

            var actual = await coordinator.GetParametersAsync();
            var message = new MessageTensorTransport(long.MaxValue);
            var expectedParameters = reference.Parameters();
            using var scope = NewDisposeScope();
            foreach (var (name, want) in expectedParameters.OrderBy(kv => kv.Key))
                results.Add(new(spec.DType, shape, $"cluster parameter {name}", GpuCheck.Error(message.Unpack(actual[name], CPU), want), tolerance));
            foreach (var t in expectedParameters.Values) t.Dispose();
        }
        finally
        {
            await coordinator.StopAsync();
        }
        return results;
    }
}
