using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Diagnostics;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;
using Orchestrator.Kernels;
using Orchestrator.Training;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>One way of running the training step, and what a step cost there (means over the timed steps).</summary>
public sealed record StepRow(string Setup, double MsPerStep, double MedianMs, double SamplesPerSecond, double DataMs, double TrunkForwardMs, double TowerForwardMs,
    double LossMs, double TowerBackwardMs, double TrunkBackwardMs, double ScatterMs, double GatherMs, IReadOnlyDictionary<string, double> MBPerStep)
{
    /// <summary>"Ipc 126, Local 126": megabytes a step by transport kind, or "-" for none.</summary>
    public string Traffic => MBPerStep.Count == 0 ? "-" : string.Join(", ", MBPerStep.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value:F0}"));
}

/// <summary>Memory after a number of steps: the device's (all processes on it) and each process's (<see cref="ProcessMemory"/>).</summary>
public sealed record MemorySample(long Step, double DeviceUsedMiB, ProcessMemory Client, ProcessMemory SiloProcess);

/// <summary>
/// The full training step of one job, run several ways on one device: in process with the kernels library alone; on a
/// silo whose coordinator and worker share it; on two silos of this process sharing it and on a silo process beside
/// this one sharing it (half the groups reach the second silo over its transport); then in process once more. Data come
/// from a safetensors file of random samples, so no teacher model costs time.
/// </summary>
public static class StepBenchmark
{
    public static async Task<List<StepRow>> RunAsync(JobSpec shape, string device, int warmup, int steps, TransportChoice transport, Action<string>? progress = null)
    {
        using var data = new RandomDataFile(shape);
        var spec = data.Job(shape, device, warmup + steps);
        var rows = new List<StepRow>();
        progress?.Invoke("in process");
        rows.Add(InProcess(spec, Devices.Parse(device), warmup));
        progress?.Invoke("one silo");
        await using (var one = await StartAsync(device, silos: 1, processes: 0))
            rows.Add(Row("1 silo: coordinator + worker", (await TrainAsync(one, spec with { Name = "bench-one-silo" })).Skip(warmup)));
        progress?.Invoke("two silos in this process");
        await using (var two = await StartAsync(device, silos: 2, processes: 0))
            rows.Add(Row("2 silos in one process sharing the device", (await TrainAsync(two, spec with { Name = "bench-two-silos", Transport = TransportChoice.Auto })).Skip(warmup)));
        progress?.Invoke("two silo processes");
        await using (var processes = await StartAsync(device, silos: 1, processes: 1))
            rows.Add(Row($"2 silo processes sharing the device ({EnumNames.Of(transport)})",
                (await TrainAsync(processes, spec with { Name = "bench-two-processes", Transport = transport })).Skip(warmup)));
        // Again at the end, so clocks and library warm-up favour neither side.
        progress?.Invoke("in process, again");
        rows.Add(InProcess(spec, Devices.Parse(device), warmup) with { Setup = "in process again, last" });
        return rows;
    }

    /// <summary>
    /// <paramref name="steps"/> steps on two silo processes sharing the device, memory read every <paramref name="every"/>
    /// steps: a long run must keep device and host memory flat.
    /// </summary>
    public static async Task<List<MemorySample>> MemoryAsync(JobSpec shape, string device, int steps, int every, TransportChoice transport, Action<string>? progress = null)
    {
        using var data = new RandomDataFile(shape);
        var spec = data.Job(shape, device, steps) with { Name = "bench-memory", Transport = transport };
        await using var cluster = await StartAsync(device, silos: 1, processes: 1);
        var samples = new List<MemorySample>();
        var gpu = Devices.Parse(device) is { type: TorchSharp.DeviceType.CUDA } cuda ? Kernels.Cuda.CudaDevice.For(cuda.index) : null;
        var siloProcess = cluster.Grains.GetGrain<IMemoryProbeGrain>(new WorkerKey(cluster.Processes[0].Name, device, "memory-probe", 0).ToString());
        await TrainAsync(cluster, spec, async (step, _) =>
        {
            if (step % every != 0 && step != steps) return;
            progress?.Invoke($"memory at step {step}");
            var (free, total) = gpu?.MemoryInfo() ?? (0, 0);
            samples.Add(new MemorySample(step, (total - free) / 1048576.0, ProcessMemory.Read(), await siloProcess.ReadAsync()));
        });
        return samples;
    }

    internal static Task<ClusterConnection> StartAsync(string device, int silos, int processes) =>
        ClusterConnection.StartEmbeddedAsync(new ClusterConnectionOptions { MaxMessageMB = 2047 }, device, silos, verbose: false, processes);

    /// <summary>A safetensors file of twice the batch of random samples (features (S, D_feat), targets (S, N, D_out)), deleted on dispose.</summary>
    internal sealed class RandomDataFile : IDisposable
    {
        readonly string path = Path.Combine(Path.GetTempPath(), $"orchestrator-step-bench-{Guid.NewGuid():N}.safetensors");

        public RandomDataFile(JobSpec spec)
        {
            using var scope = NewDisposeScope();
            var dtype = spec.DType;
            long samples = 2L * spec.BatchSize;
            SafeTensors.Write(path, new Dictionary<string, Tensor>
            {
                [SafetensorsSource.FeaturesName] = randn([samples, spec.Shape.Features]).to(dtype),
                [SafetensorsSource.TargetsName] = randn([samples, spec.Shape.Groups, spec.Shape.Output]).to(dtype),
            });
        }

        public JobSpec Job(JobSpec shape, string devices, int steps) => shape with
        {
            Steps = steps,
            Devices = devices.Split(','),
            Data = new DataSpec { Source = "safetensors", Path = path, DataSeed = shape.Data.DataSeed },
        };

        public void Dispose() => File.Delete(path);
    }

    static StepRow InProcess(JobSpec spec, Device device, int warmup)
    {
        using var trainer = new InProcessTrainer(spec, device);
        return Row("in process, kernels library alone", Enumerable.Range(0, spec.Steps).Select(_ => trainer.Step()).Skip(warmup));
    }

    /// <summary>Starts the job, runs all its steps (calling <paramref name="after"/> after each), stops it.</summary>
    internal static async Task<List<StepMetrics>> TrainAsync(ClusterConnection cluster, JobSpec spec, Func<long, StepMetrics, Task>? after = null)
    {
        var coordinator = cluster.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            var metrics = new List<StepMetrics>();
            for (int i = 1; i <= spec.Steps; i++)
            {
                metrics.Add(await coordinator.StepAsync());
                if (after is not null) await after(i, metrics[^1]);
            }
            return metrics;
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    internal static StepRow Row(string setup, IEnumerable<StepMetrics> timed)
    {
        var m = timed.ToList();
        double Mean(Func<StepMetrics, double> f) => m.Average(f);
        var megabytes = m.SelectMany(s => s.BytesMoved ?? new Dictionary<string, long>()).GroupBy(kv => kv.Key)
            .ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value) / 1e6 / m.Count);
        var sorted = m.Select(s => s.TotalMs).Order().ToArray();
        return new(setup, Mean(s => s.TotalMs), sorted[sorted.Length / 2], m[0].BatchSize * 1000.0 / Mean(s => s.TotalMs), Mean(s => s.DataMs), Mean(s => s.TrunkForwardMs - s.DataMs), Mean(s => s.TowerForwardMs),
            Mean(s => s.LossMs), Mean(s => s.TowerBackwardMs), Mean(s => s.TrunkBackwardMs), Mean(s => s.ScatterMs), Mean(s => s.GatherMs), megabytes);
    }

    public static string ToMarkdown(JobSpec spec, string device, IReadOnlyList<StepRow> rows)
    {
        var s = spec.Shape;
        var lines = new List<string>
        {
            $"device {device}, {DTypeNames.Name(spec.DType)}, B={spec.BatchSize}, N={s.Groups}, D_feat={s.Features}, {s.Input}->{s.Hidden}->{s.Output}; ms of host wall clock per step, the mean over the timed steps (the median beside it); phases are means",
            "",
            "| setup | ms/step | median | vs in process (last row) | samples/s | data | trunk fwd | towers fwd | loss | towers bwd | trunk bwd + AdamW | scatter | gather | MB/step by transport |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        };
        var baseline = rows[^1];   // the warm in-process run
        lines.AddRange(rows.Select(r => $"| {r.Setup} | {r.MsPerStep:F2} | {r.MedianMs:F2} | {100 * (r.MsPerStep / baseline.MsPerStep - 1):+0.0;-0.0}% | {r.SamplesPerSecond:N0} | " +
            $"{r.DataMs:F2} | {r.TrunkForwardMs:F2} | {r.TowerForwardMs:F2} | {r.LossMs:F2} | {r.TowerBackwardMs:F2} | {r.TrunkBackwardMs:F2} | {r.ScatterMs:F2} | {r.GatherMs:F2} | " +
            $"{r.Traffic} |"));
        return string.Join(Environment.NewLine, lines);
    }

    public static string ToMarkdown(IReadOnlyList<MemorySample> samples)
    {
        var lines = new List<string>
        {
            "| step | device memory used (MiB, all processes) | client process: resident / managed heap (MiB) | silo process: resident / managed heap (MiB) |",
            "| ---: | ---: | ---: | ---: |",
        };
        lines.AddRange(samples.Select(m => $"| {m.Step} | {m.DeviceUsedMiB:F0} | {m.Client.ResidentMiB:F0} / {m.Client.ManagedHeapMiB:F0} | " +
            $"{m.SiloProcess.ResidentMiB:F0} / {m.SiloProcess.ManagedHeapMiB:F0} |"));
        return string.Join(Environment.NewLine, lines);
    }
}
