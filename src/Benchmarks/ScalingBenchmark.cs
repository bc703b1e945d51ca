using Orchestrator.Training;

namespace Orchestrator.Benchmarks;

/// <summary>What one layout of the job trained at.</summary>
public sealed record ScalingRow(string Setup, int Groups, int Workers, StepRow Step);

/// <summary>
/// Scaling over GPUs on one silo that owns them all (workers on other GPUs get their slices by device-to-device
/// copies): the job with N groups on the first GPU and on all of them (strong scaling: same work, more GPUs), then with
/// N x GPUs groups on the first GPU and on all of them (weak scaling: the work grows with the GPUs). With one GPU, the
/// "all" rows put as many workers on it as the scaling rows would have GPUs: that checks the multi-worker logic, not speed.
/// </summary>
public static class ScalingBenchmark
{
    public static async Task<List<ScalingRow>> RunAsync(JobSpec shape, IReadOnlyList<string> devices, int sharedWorkers, int warmup, int steps,
        Action<string>? progress = null)
    {
        int scale = devices.Count > 1 ? devices.Count : sharedWorkers;
        string all = devices.Count > 1 ? $"{devices.Count} devices ({string.Join(", ", devices)})" : $"{scale} workers sharing {devices[0]}";
        var rows = new List<ScalingRow>();
        await using var cluster = await StepBenchmark.StartAsync(string.Join(",", devices), silos: 1, processes: 0);
        foreach (int groups in new[] { shape.Shape.Groups, shape.Shape.Groups * scale })
        {
            var job = shape with { Shape = shape.Shape with { Groups = groups } };
            using var data = new StepBenchmark.RandomDataFile(job);
            foreach (var (setup, layout) in new[]
                     {
                         ($"1 device ({devices[0]})", data.Job(job, devices[0], warmup + steps)),
                         (all, data.Job(job, string.Join(",", devices), warmup + steps) with { WorkersPerDevice = devices.Count > 1 ? 1 : scale }),
                     })
            {
                progress?.Invoke($"{groups} groups on {setup}");
                var metrics = await StepBenchmark.TrainAsync(cluster, layout with { Name = $"bench-scaling-{rows.Count}" });
                int workers = Math.Min(groups, layout.Devices.Count * layout.WorkersPerDevice);
                rows.Add(new ScalingRow(setup, groups, workers, StepBenchmark.Row(setup, metrics.Skip(warmup))));
            }
        }
        return rows;
    }

    public static string ToMarkdown(JobSpec spec, IReadOnlyList<ScalingRow> rows)
    {
        var s = spec.Shape;
        var lines = new List<string>
        {
            $"{Kernels.DTypeNames.Name(spec.DType)}, B={spec.BatchSize}, D_feat={s.Features}, towers {s.Input}->{s.Hidden}->{s.Output}; means over the timed steps",
            "",
            "| groups | setup | workers | ms/step | samples/s | vs 1 device, same groups | towers fwd | towers bwd | MB/step by transport |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        };
        foreach (var pair in rows.Chunk(2))
            lines.AddRange(pair.Select(r =>
                $"| {r.Groups} | {r.Setup} | {r.Workers} | {r.Step.MsPerStep:F2} | {r.Step.SamplesPerSecond:N0} | " +
                $"{r.Step.SamplesPerSecond / pair[0].Step.SamplesPerSecond:F2}x | {r.Step.TowerForwardMs:F2} | {r.Step.TowerBackwardMs:F2} | " +
                $"{r.Step.Traffic} |"));
        lines.Add("");
        lines.Add($"strong scaling ({rows[0].Groups} groups): {rows[1].Step.SamplesPerSecond / rows[0].Step.SamplesPerSecond:F2}x; " +
                  $"weak scaling ({rows[2].Groups} groups): {rows[3].Step.SamplesPerSecond / rows[2].Step.SamplesPerSecond:F2}x");
        return string.Join(Environment.NewLine, lines);
    }
}
