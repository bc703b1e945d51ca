using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Kernels;
using Orchestrator.Training;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Client.Gpu;

/// <summary>One way of running the training step, and what a step cost there (means over the timed steps).</summary>
public sealed record StepRow(string Setup, double MsPerStep, double SamplesPerSecond, double TrunkForwardMs, double TowerForwardMs,
    double LossMs, double TowerBackwardMs, double TrunkBackwardMs);

/// <summary>
/// The full training step of one job, run three ways on one device: in process with the kernels library alone, on a
/// silo whose coordinator and worker share it, and on two silos sharing it (half the groups reach the second silo over
/// the chosen transport), then in process once more. Data come from a safetensors file of random samples, so no
/// teacher model costs time.
/// </summary>
public static class StepBenchmark
{
    public static async Task<List<StepRow>> RunAsync(JobSpec shape, string device, int warmup, int steps, string transport, Action<string>? progress = null)
    {
        var dataPath = Path.Combine(Path.GetTempPath(), $"orchestrator-step-bench-{Guid.NewGuid():N}.safetensors");
        try
        {
            WriteRandomData(shape, dataPath);
            var spec = shape with
            {
                Steps = warmup + steps,
                Devices = [device],
                Data = new DataSpec { Source = "safetensors", Path = dataPath, DataSeed = shape.Data.DataSeed },
            };
            var rows = new List<StepRow>();
            progress?.Invoke("in process");
            rows.Add(InProcess(spec, Devices.Parse(device), warmup));
            var options = new ClusterConnectionOptions { MaxMessageMB = 2047 };
            progress?.Invoke("one silo");
            await using (var one = await ClusterConnection.StartEmbeddedAsync(options, device, silos: 1, verbose: false))
                rows.Add(await OnCluster(one, spec with { Name = "bench-one-silo" }, warmup, "1 silo: coordinator + worker"));
            progress?.Invoke("two silos");
            await using (var two = await ClusterConnection.StartEmbeddedAsync(options, device, silos: 2, verbose: false))
                rows.Add(await OnCluster(two, spec with { Name = "bench-two-silos", Transport = transport },
                    warmup, $"2 silos sharing the device ({transport})"));
            // Again at the end, so clocks and library warm-up favour neither side.
            progress?.Invoke("in process, again");
            rows.Add(InProcess(spec, Devices.Parse(device), warmup) with { Setup = "in process again, last" });
            return rows;
        }
        finally
        {
            File.Delete(dataPath);
        }
    }

    /// <summary>Twice the batch of random samples: features (S, D_feat), targets (S, N, D_out).</summary>
    static void WriteRandomData(JobSpec spec, string path)
    {
        using var scope = NewDisposeScope();
        var dtype = DTypeNames.Parse(spec.DType);
        long samples = 2L * spec.BatchSize;
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = randn([samples, spec.Shape.Features]).to(dtype),
            [SafetensorsSource.TargetsName] = randn([samples, spec.Shape.Groups, spec.Shape.Output]).to(dtype),
        });
    }

    static StepRow InProcess(JobSpec spec, Device device, int warmup)
    {
        using var trainer = new InProcessTrainer(spec, device);
        var metrics = Enumerable.Range(0, spec.Steps).Select(_ => trainer.Step()).Skip(warmup).ToList();
        return Row("in process, kernels library alone", metrics);
    }

    static async Task<StepRow> OnCluster(ClusterConnection cluster, JobSpec spec, int warmup, string setup)
    {
        var coordinator = cluster.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            var metrics = new List<StepMetrics>();
            for (int i = 0; i < spec.Steps; i++) metrics.Add(await coordinator.StepAsync());
            return Row(setup, metrics.Skip(warmup).ToList());
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    static StepRow Row(string setup, List<StepMetrics> m) => new(setup, m.Average(s => s.TotalMs), m[0].BatchSize * 1000.0 / m.Average(s => s.TotalMs),
        m.Average(s => s.TrunkForwardMs), m.Average(s => s.TowerForwardMs), m.Average(s => s.LossMs),
        m.Average(s => s.TowerBackwardMs), m.Average(s => s.TrunkBackwardMs));

    public static string ToMarkdown(JobSpec spec, string device, IReadOnlyList<StepRow> rows)
    {
        var s = spec.Shape;
        var lines = new List<string>
        {
            $"device {device}, {spec.DType}, B={spec.BatchSize}, N={s.Groups}, D_feat={s.Features}, {s.Input}->{s.Hidden}->{s.Output}; means over the timed steps",
            "",
            "| setup | ms/step | vs in process (last row) | samples/s | trunk fwd + scatter | towers fwd | loss | towers bwd | trunk bwd |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        };
        var baseline = rows[^1];   // the warm in-process run
        lines.AddRange(rows.Select(r => $"| {r.Setup} | {r.MsPerStep:F2} | {100 * (r.MsPerStep / baseline.MsPerStep - 1):+0.0;-0.0}% | {r.SamplesPerSecond:N0} | " +
            $"{r.TrunkForwardMs:F2} | {r.TowerForwardMs:F2} | {r.LossMs:F2} | {r.TowerBackwardMs:F2} | {r.TrunkBackwardMs:F2} |"));
        return string.Join(Environment.NewLine, lines);
    }
}
