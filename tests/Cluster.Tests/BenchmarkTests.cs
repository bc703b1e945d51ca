using Orchestrator.Benchmarks;
using Orchestrator.Connection;
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
        Assert.Equal(9, report.Rows.Count);   // 4 GEMM cases, the SwiGLU activation both ways, AdamW, MSE, the trunk's SiLU backward
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
        // Per shape: 7 kernel quantities; for float32 also MSE loss and dY, two verdict counts, the SiLU backward, 3 AdamW
        // tensors x 3 slots, the job losses' 6 (weighted MSE and BCE loss and dY, the BCE target count, clipping's norm),
        // and the modules' 8 (GroupedLinear out, dX, d weight, d bias; GroupedSwiGluMlp out, dX and its two weights' gradients).
        Assert.Equal(3 * 7 + 3 * (7 + 5 + 9 + 6 + 8), results.Count);
        Assert.All(results, r => Assert.True(r.Passed, $"{r.DType} {r.Shape} {r.Quantity}: {r.RelativeError:E2}"));
    }

    [Fact]
    public void The_step_floors_count_the_seed_jobs_work()
    {
        var seed = new JobSpec
        {
            Shape = new ModelShape { Groups = 12, Features = 1024, Input = 1024, Hidden = 3072, Output = 1024 },
            BatchSize = 2560,
            DType = ScalarType.BFloat16,
        };
        var work = Enum.GetValues<StepPhase>().ToDictionary(p => p, p => StepFloors.Of(p, seed));
        double towerParameters = 12.0 * (1024 * 6144 + 3072 * 1024);
        Assert.Equal(1.74e12, work[StepPhase.TowersForward].Flops + work[StepPhase.TowersBackward].Flops, 0.01e12);
        Assert.Equal(28 * towerParameters, work[StepPhase.TowersAdamW].Bytes);   // float32 masters and moments, bf16 gradient and copy
        Assert.Equal(1.87e12, work.Values.Sum(w => w.Flops), 0.01e12);
        Assert.Equal(2.0, new PhaseWork(790e9, 4.2e9).FloorMs(790, 4200), 12);   // 1 ms of GEMM at 790 TFLOP/s + 1 ms of bytes at 4.2 TB/s
    }

    static readonly JobSpec SmallStep = new()
    {
        Name = "bench-step",
        Shape = new ModelShape { Groups = 4, Features = 16, Input = 16, Hidden = 24, Output = 8 },
        BatchSize = 32,
        DType = ScalarType.Float32,
    };

    /// <summary>The silo processes of a local cluster come from the build of src/Silo (a test host is not the client's build output).</summary>
    public BenchmarkTests() => Environment.SetEnvironmentVariable(LocalSiloProcess.HostVariable, Build.SiloDll);

    [Fact]
    public async Task The_step_benchmark_runs_every_setup_including_a_silo_process()
    {
        var rows = await StepBenchmark.RunAsync(SmallStep, "cpu", warmup: 1, steps: 3, transport: TransportChoice.Channel);
        Assert.Equal(5, rows.Count);
        Assert.All(rows, r => Assert.True(r.MsPerStep > 0 && r.SamplesPerSecond > 0, r.Setup));
        // float32 x and dY slices of 32 x groups x 16, y and dX of 32 x groups x 8: 4 groups on one silo's worker, then 2 per worker.
        double MB(int groups) => 2 * 32 * groups * (16 + 8) * 4 / 1e6;
        Assert.Equal(MB(4), rows[1].MBPerStep["local"], 9);
        Assert.Equal((MB(2), MB(2)), (rows[3].MBPerStep["local"], rows[3].MBPerStep["channel"]));
        var table = StepBenchmark.ToMarkdown(SmallStep, "cpu", rows);
        Assert.Contains("| 2 silo processes sharing the device (channel) |", table);
        Assert.Contains("| channel 0, local 0 |", table);   // MB per step, rounded
    }

    [Fact]
    public async Task The_memory_run_reads_host_memory_of_both_processes_as_it_trains()
    {
        var samples = await StepBenchmark.MemoryAsync(SmallStep, "cpu", steps: 25, every: 10, transport: TransportChoice.Channel);
        Assert.Equal([10L, 20, 25], samples.Select(s => s.Step));
        Assert.All(samples, s => Assert.True(s.Client.ResidentMiB > 50 && s.SiloProcess.ResidentMiB > 50 && s.DeviceUsedMiB == 0
            && s.Client.ManagedHeapMiB > 0 && s.SiloProcess.ManagedHeapMiB > 0 && s.SiloProcess.ResidentMiB > s.SiloProcess.ManagedHeapMiB, $"{s}"));
        Assert.Contains("| 25 | 0 |", StepBenchmark.ToMarkdown(samples));
    }

    [Fact]
    public async Task The_scaling_benchmark_runs_the_strong_and_weak_layouts_with_shared_workers_on_one_device()
    {
        var rows = await ScalingBenchmark.RunAsync(SmallStep, ["cpu"], sharedWorkers: 2, warmup: 1, steps: 3);
        Assert.Equal([(4, 1), (4, 2), (8, 1), (8, 2)], rows.Select(r => (r.Groups, r.Workers)));
        Assert.All(rows, r => Assert.True(r.Step.SamplesPerSecond > 0, r.Setup));
        var table = ScalingBenchmark.ToMarkdown(SmallStep, rows);
        Assert.Contains("| 8 | 2 workers sharing cpu | 2 |", table);
        Assert.Contains("strong scaling (4 groups): ", table);
    }

    [Fact]
    public async Task The_cluster_gpu_check_passes_on_the_cpu_for_every_transport()
    {
        var results = await ClusterGpuCheck.RunAsync("cpu", [ScalarType.Float64]);
        // message, process and channel between two silos of this process; channel between this process and a silo process.
        Assert.Equal(4, results.Select(r => r.Shape).Distinct().Count());
        Assert.Contains(results, r => r.Shape.StartsWith("2 silo processes sharing one GPU (channel)"));
        Assert.All(results, r => Assert.True(r.Passed, $"{r.Shape} {r.Quantity}: {r.RelativeError:E2}"));
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
