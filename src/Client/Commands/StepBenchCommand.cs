using System.ComponentModel;
using Orchestrator.Client.Gpu;
using Orchestrator.Training;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator bench-step`: the full training step in process, on one silo, on two silos and on two silo processes sharing a device.</summary>
public sealed class StepBenchCommand : AsyncCommand<StepBenchCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--device <DEVICE>"), DefaultValue("cuda:0")]
        [Description("Device every setup trains on: cuda:N, or cpu (use small shapes).")]
        public string Device { get; init; } = "cuda:0";

        [CommandOption("--dtype <DTYPE>"), DefaultValue("bfloat16")]
        [Description("Element type: bfloat16, float16, float32 or float64.")]
        public string DType { get; init; } = "bfloat16";

        [CommandOption("--batch-size <B>"), DefaultValue(2560)]
        [Description("Batch size B.")]
        public int BatchSize { get; init; } = 2560;

        [CommandOption("--groups <N>"), DefaultValue(12)]
        [Description("Groups N.")]
        public int Groups { get; init; } = 12;

        [CommandOption("--features <D_FEAT>"), DefaultValue(1024)]
        [Description("Feature width of the trunk's input.")]
        public int Features { get; init; } = 1024;

        [CommandOption("--input <D_IN>"), DefaultValue(1024)]
        [Description("Input features per group D_in.")]
        public int Input { get; init; } = 1024;

        [CommandOption("--hidden <H>"), DefaultValue(3072)]
        [Description("Hidden size H of each tower.")]
        public int Hidden { get; init; } = 3072;

        [CommandOption("--output <D_OUT>"), DefaultValue(1024)]
        [Description("Output features per group D_out.")]
        public int Output { get; init; } = 1024;

        [CommandOption("--warmup <STEPS>"), DefaultValue(20)]
        [Description("Untimed steps first.")]
        public int Warmup { get; init; } = 20;

        [CommandOption("--steps <STEPS>"), DefaultValue(30)]
        [Description("Timed steps per setup.")]
        public int Steps { get; init; } = 30;

        [CommandOption("--transport <KIND>"), DefaultValue("auto")]
        [Description("How the silo process's worker gets its slices: auto (CUDA IPC on a GPU), ipc, channel or message.")]
        public string Transport { get; init; } = "auto";

        [CommandOption("--memory-steps <STEPS>"), DefaultValue(0)]
        [Description("Then train this many steps on the two silo processes, reading device and host memory as it goes (0: skip).")]
        public int MemorySteps { get; init; }

        [CommandOption("--memory-every <STEPS>"), DefaultValue(100)]
        [Description("Steps between memory readings of the --memory-steps run.")]
        public int MemoryEvery { get; init; } = 100;
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var spec = new JobSpec
        {
            Name = "bench-step",
            Shape = new ModelShape { Groups = s.Groups, Features = s.Features, Input = s.Input, Hidden = s.Hidden, Output = s.Output },
            BatchSize = s.BatchSize,
            DType = s.DType,
            Transport = s.Transport,
        }.Validate();
        var rows = await StepBenchmark.RunAsync(spec, s.Device, s.Warmup, s.Steps, s.Transport, p => Console.Error.WriteLine($"timing {p}"));
        Console.WriteLine(StepBenchmark.ToMarkdown(spec, s.Device, rows));
        if (s.MemorySteps > 0)
        {
            var samples = await StepBenchmark.MemoryAsync(spec, s.Device, s.MemorySteps, s.MemoryEvery, s.Transport, p => Console.Error.WriteLine(p));
            Console.WriteLine();
            Console.WriteLine($"memory over {s.MemorySteps} steps on 2 silo processes sharing {s.Device} ({s.Transport}):");
            Console.WriteLine();
            Console.WriteLine(StepBenchmark.ToMarkdown(samples));
        }
        return 0;
    }
}
