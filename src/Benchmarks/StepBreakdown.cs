using System.Text;
using Orchestrator.Kernels;
using Orchestrator.Kernels.Cuda;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>One phase of the step: mean device time, and its floor at the same run's ceilings.</summary>
public sealed record PhaseTime(StepPhase Phase, double DeviceMs, PhaseWork Work, double FloorMs)
{
    public double PercentOfFloor => 100 * FloorMs / DeviceMs;
}

/// <summary>Device time per phase, the host's wall clock per step, and the ceilings the floors were computed at.</summary>
public sealed record StepBreakdownReport(IReadOnlyList<PhaseTime> Phases, double HostMsPerStep, double GemmTflops, double CopyGBps)
{
    public double DeviceMsPerStep => Phases.Sum(p => p.DeviceMs);
}

/// <summary>
/// Where the single-process step's time goes on a GPU: a CUDA event on the step's stream as each phase has been queued
/// (<see cref="InProcessTrainer.PhaseQueued"/>), device time between them averaged over the timed steps, each phase beside
/// its floor (<see cref="StepFloors"/>) at the GEMM and copy rates measured in the same run.
/// </summary>
public static class StepBreakdown
{
    public static StepBreakdownReport Run(JobSpec spec, Device device, int warmup, int steps)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) throw new ArgumentException("the device-time breakdown needs a CUDA device.");
        var timer = new DeviceTimer(device, 3, 10);
        var dtype = spec.DType;
        double gemm = Ceilings.GemmTflops(timer, dtype), copy = Ceilings.CopyGBps(timer, dtype);
        var phases = Enum.GetValues<StepPhase>();
        var totals = new double[phases.Length];
        double hostMs;
        using (var trainer = new InProcessTrainer(spec with { Steps = warmup + steps }, device))
        using (var marks = new StreamMarks(device.index))
        {
            for (int step = 0; step < warmup; step++) trainer.Step();
            // A mark before each step and one as each phase is queued; read only after the last step, so reading them
            // adds no host wait between steps.
            trainer.PhaseQueued = _ => marks.Record();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (int step = 0; step < steps; step++)
            {
                marks.Record();
                trainer.Step();
            }
            marks.ElapsedMs(0, marks.Count - 1);   // waits for the last step
            hostMs = clock.Elapsed.TotalMilliseconds / steps;
            for (int step = 0; step < steps; step++)
                for (int p = 0; p < phases.Length; p++)
                {
                    int first = step * (phases.Length + 1) + p;
                    totals[p] += marks.ElapsedMs(first, first + 1);
                }
        }
        gemm = Math.Max(gemm, Ceilings.GemmTflops(timer, dtype));
        copy = Math.Max(copy, Ceilings.CopyGBps(timer, dtype));
        var rows = phases.Select((phase, p) =>
        {
            var work = StepFloors.Of(phase, spec);
            return new PhaseTime(phase, totals[p] / steps, work, work.FloorMs(gemm, copy));
        }).ToList();
        return new StepBreakdownReport(rows, hostMs, gemm, copy);
    }

    public static string ToMarkdown(StepBreakdownReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"in process, device time per phase (CUDA events on the step's stream), means over the timed steps; floors at this run's " +
                      $"ceilings: GEMM {r.GemmTflops:F0} TFLOP/s (square matmul), copy {r.CopyGBps:F0} GB/s (read + write)");
        sb.AppendLine();
        sb.AppendLine("| phase | device ms | floor ms | % of floor | GEMM GFLOP | MB moved |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var p in r.Phases)
            sb.AppendLine($"| {p.Phase} | {p.DeviceMs:F3} | {p.FloorMs:F3} | {p.PercentOfFloor:F0}% | {p.Work.Flops / 1e9:F0} | {p.Work.Bytes / 1e6:F0} |");
        double floor = r.Phases.Sum(p => p.FloorMs);
        sb.AppendLine($"| whole step (device) | {r.DeviceMsPerStep:F3} | {floor:F3} | {100 * floor / r.DeviceMsPerStep:F0}% | | |");
        sb.AppendLine($"| whole step (host wall clock over these steps) | {r.HostMsPerStep:F3} | | | | |");
        return sb.ToString();
    }
}
