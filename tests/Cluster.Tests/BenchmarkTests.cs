using Orchestrator.Client.Gpu;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>The benchmark and check commands' engines, on the CPU with small shapes: they run and report sane numbers.</summary>
public class BenchmarkTests
{
    [Fact]
    public void The_kernel_benchmark_times_every_case_and_phase()
    {
        var settings = new BenchmarkSettings(Batch: 16, Groups: 3, InputDim: 32, LinearOutputDim: 48, HiddenDim: 40, MlpOutputDim: 24,
            DType: ScalarType.Float32, Device: CPU, Warmup: 1, Repetitions: 3, InputSets: 2);
        var report = KernelBenchmark.Run(settings);
        Assert.Equal(6, report.Rows.Count);
        Assert.Equal(6, report.MlpPhases.Count);
        Assert.All(report.Rows, r => Assert.True(r.LoopMs > 0 && r.OursMs > 0 && r.Rate > 0 && r.PercentOfCeiling > 0, r.Case));
        var table = KernelBenchmark.ToMarkdown(report);
        Assert.Contains("| grouped linear fwd 32->48 |", table);
        Assert.Contains("\"Rows\"", KernelBenchmark.ToJson(report));
    }

    [Fact]
    public void The_gpu_check_passes_on_the_cpu_for_every_shape()
    {
        var results = GpuCheck.Run(CPU, [ScalarType.Float64, ScalarType.Float32], GpuCheck.DefaultShapes[1..]);
        Assert.Equal(2 * 3 * 7, results.Count);
        Assert.All(results, r => Assert.True(r.Passed, $"{r.DType} {r.Shape} {r.Quantity}: {r.RelativeError:E2}"));
    }

    [Fact]
    public async Task The_step_benchmark_runs_every_setup()
    {
        var spec = new JobSpec
        {
            Name = "bench-step",
            Shape = new ModelShape { Groups = 4, Features = 16, Input = 16, Hidden = 24, Output = 8 },
            BatchSize = 32,
            DType = "float32",
        };
        var rows = await StepBenchmark.RunAsync(spec, "cpu", warmup: 1, steps: 3, transport: "channel");
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.True(r.MsPerStep > 0 && r.SamplesPerSecond > 0, r.Setup));
        Assert.Contains("2 silos sharing the device (channel)", StepBenchmark.ToMarkdown(spec, "cpu", rows));
    }

    [Fact]
    public async Task The_transport_benchmark_measures_both_paths()
    {
        var rows = await TransportBenchmark.RunAsync([1L << 20, 3L << 20], repetitions: 2);
        Assert.Equal([1L << 20, 3L << 20], rows.Select(r => r.Bytes));
        Assert.All(rows, r => Assert.True(r.MessageGBps > 0 && r.ChannelGBps > 0));
        Assert.Contains("| 3 MiB |", TransportBenchmark.ToMarkdown(rows, 2));
    }
}
