using System.ComponentModel;
using Orchestrator.Benchmarks;
using Orchestrator.Training;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>
/// `orchestrator bench-step`: the full training step in process, on one silo, on two silos and on two silo processes
/// sharing a device; on a GPU then the in-process step's device time per phase beside each phase's floor.
/// </summary>
public sealed class StepBenchCommand : AsyncCommand<StepBenchCommand.Settings>
{
    public sealed class Settings : StepShapeSettings
    {
        [CommandOption("--device <DEVICE>"), DefaultValue("cuda:0")]
        [Description("Device every setup trains on: cuda:N, or cpu (use small shapes).")]
        public string Device { get; init; } = "cuda:0";

        [CommandOption("--transport <KIND>"), DefaultValue("auto"), TypeConverter(typeof(EnumNameConverter<TransportChoice>))]
        [Description("How the silo process's worker gets its slices: auto (CUDA IPC on a GPU), message, channel, process (reaches only silos of the coordinator's process) or ipc.")]
        public TransportChoice Transport { get; init; } = TransportChoice.Auto;

        [CommandOption("--memory-steps <STEPS>"), DefaultValue(0), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Then train this many steps on the two silo processes, reading device and host memory as it goes (0: skip).")]
        public int MemorySteps { get; init; }

        [CommandOption("--memory-every <STEPS>"), DefaultValue(100), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Steps between memory readings of the --memory-steps run.")]
        public int MemoryEvery { get; init; } = 100;
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var spec = s.ToJobSpec("bench-step", s.Transport);
        var rows = await StepBenchmark.RunAsync(spec, s.Device, s.Warmup, s.Steps, s.Transport, p => Console.Error.WriteLine($"timing {p}"));
        Console.WriteLine(StepBenchmark.ToMarkdown(spec, s.Device, rows));
        if (Kernels.Devices.IsGpuName(s.Device))
        {
            Console.Error.WriteLine("timing the phases in process");
            using var data = new StepBenchmark.RandomDataFile(spec);
            var breakdown = StepBreakdown.Run(data.Job(spec, s.Device, s.Steps), Kernels.Devices.Parse(s.Device), s.Warmup, s.Steps);
            Console.WriteLine();
            Console.WriteLine(StepBreakdown.ToMarkdown(breakdown));
        }
        if (s.MemorySteps > 0)
        {
            var samples = await StepBenchmark.MemoryAsync(spec, s.Device, s.MemorySteps, s.MemoryEvery, s.Transport, p => Console.Error.WriteLine(p));
            Console.WriteLine();
            Console.WriteLine($"memory over {s.MemorySteps} steps on 2 silo processes sharing {s.Device} ({EnumNames.Of(s.Transport)}):");
            Console.WriteLine();
            Console.WriteLine(StepBenchmark.ToMarkdown(samples));
        }
        return 0;
    }
}
