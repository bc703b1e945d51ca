using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>
/// The distributed equality check on a GPU: two silos share one GPU, a job is sharded over a worker on each (one
/// reached by reference, the other through each transport in turn: Orleans messages, the process registry and the TCP
/// data channel between two silos of this process, CUDA IPC between this process and a silo process beside it), and
/// after a few steps its losses and parameters must equal the single-process trainer's on the CPU in the same dtype.
/// </summary>
public static class ClusterGpuCheck
{
    /// <summary>Each transport choice checked, with the kind of payload the remote worker must then be sent.</summary>
    static readonly (TransportChoice Choice, TensorPayloadKind Kind)[] InOneProcess =
        [(TransportChoice.Message, TensorPayloadKind.Message), (TransportChoice.Process, TensorPayloadKind.Process), (TransportChoice.Channel, TensorPayloadKind.Channel)];

    public static async Task<List<CheckResult>> RunAsync(string device, IReadOnlyList<ScalarType> dtypes, Action<string>? progress = null)
    {
        var results = new List<CheckResult>();
        await using (var silos = await ClusterConnection.StartEmbeddedAsync(new ClusterConnectionOptions(), device, silos: 2, verbose: false))
            foreach (var transport in InOneProcess)
                results.AddRange(await CheckAsync(silos, device, dtypes, transport, "2 silos of one process", progress));
        // CUDA IPC needs a GPU; on the CPU the two processes exchange over the data channel.
        await using (var processes = await ClusterConnection.StartEmbeddedAsync(new ClusterConnectionOptions(), device, silos: 1, verbose: false, processes: 1))
            results.AddRange(await CheckAsync(processes, device, dtypes,
                Kernels.Devices.IsGpuName(device) ? (TransportChoice.Ipc, TensorPayloadKind.Ipc) : (TransportChoice.Channel, TensorPayloadKind.Channel),
                "2 silo processes", progress));
        return results;
    }

    static async Task<List<CheckResult>> CheckAsync(ClusterConnection cluster, string device, IReadOnlyList<ScalarType> dtypes,
        (TransportChoice Choice, TensorPayloadKind Kind) transport, string silos, Action<string>? progress)
    {
        var results = new List<CheckResult>();
        string transportName = EnumNames.Of(transport.Choice);
        foreach (var dtype in dtypes)
        {
            progress?.Invoke($"cluster {Kernels.DTypeNames.Name(dtype)} {transportName}");
            int seed = Random.Shared.Next();
            var spec = new JobSpec
            {
                Name = $"gpu-check-{Kernels.DTypeNames.Name(dtype)}-{transportName}-{seed}",
                Shape = new ModelShape { Groups = 6, Features = 48, Input = 64, Hidden = 96, Output = 32 },
                BatchSize = 200,
                DType = dtype,
                Steps = 5,
                Seed = seed,
                Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
                Devices = [device],
                Transport = transport.Choice,
            };
            results.AddRange(await CompareAsync(cluster, spec, transport.Kind, $"{silos} sharing one GPU ({transportName})"));
        }
        return results;
    }

    static async Task<List<CheckResult>> CompareAsync(ClusterConnection cluster, JobSpec spec, TensorPayloadKind remoteKind, string setup)
    {
        double tolerance = GpuCheck.Tolerance(spec.DType);
        string dtype = Kernels.DTypeNames.Name(spec.DType);
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
            if (remote != remoteKind)
                throw new InvalidOperationException($"the remote worker uses {EnumNames.Of(remote)}, not {EnumNames.Of(remoteKind)}.");
            double worst = 0;
            for (int step = 0; step < spec.Steps; step++)
            {
                double loss = (await coordinator.StepAsync()).Loss, expected = reference.Step().Loss;
                worst = Math.Max(worst, Math.Abs(loss - expected) / Math.Abs(expected));
            }
            results.Add(new(dtype, shape, "cluster loss, every step", worst, tolerance));

            var actual = await coordinator.GetParametersAsync();
            var message = new MessageTensorTransport(long.MaxValue);
            var expectedParameters = reference.Parameters();
            using var scope = NewDisposeScope();
            foreach (var (name, want) in expectedParameters.OrderBy(kv => kv.Key))
                results.Add(new(dtype, shape, $"cluster parameter {name}", GpuCheck.Error(message.Unpack(actual[name], CPU), want), tolerance));
            foreach (var t in expectedParameters.Values) t.Dispose();
        }
        finally
        {
            await coordinator.StopAsync();
        }
        return results;
    }
}
