using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Client.Gpu;

/// <summary>
/// The distributed equality check on a GPU: two silos in this process share one GPU, a job is sharded over a
/// worker on each (one reached by reference, one through Orleans messages), and after a few steps its losses and
/// parameters must equal the single-process trainer's on the CPU in the same dtype.
/// </summary>
public static class ClusterGpuCheck
{
    public static async Task<List<CheckResult>> RunAsync(string device, IEnumerable<string> dtypes, Action<string>? progress = null)
    {
        var options = new ClusterConnectionOptions();
        await using var cluster = await ClusterConnection.StartEmbeddedAsync(options, device, silos: 2, verbose: false);
        var results = new List<CheckResult>();
        foreach (var dtype in dtypes)
        {
            progress?.Invoke($"cluster {dtype}");
            int seed = Random.Shared.Next();
            var spec = new JobSpec
            {
                Name = $"gpu-check-{dtype}-{seed}",
                Shape = new ModelShape { Groups = 6, Features = 48, Input = 64, Hidden = 96, Output = 32 },
                BatchSize = 200,
                DType = dtype,
                Steps = 5,
                Seed = seed,
                Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
                Devices = [$"embedded-0/{device}", $"embedded-1/{device}"],
            };
            results.AddRange(await CompareAsync(cluster, spec));
        }
        return results;
    }

    static async Task<List<CheckResult>> CompareAsync(ClusterConnection cluster, JobSpec spec)
    {
        double tolerance = GpuCheck.Tolerance(Kernels.DTypeNames.Parse(spec.DType));
        string shape = $"2 silos sharing one GPU, {spec.Shape.Groups} groups, {spec.Steps} steps";
        using var reference = new InProcessTrainer(spec);
        var coordinator = cluster.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        var results = new List<CheckResult>();
        try
        {
            if (status.Workers.Select(w => w.Silo).Distinct().Count() != 2)
                throw new InvalidOperationException($"expected workers on both silos, got {string.Join(", ", status.Workers.Select(w => w.Silo))}.");
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
