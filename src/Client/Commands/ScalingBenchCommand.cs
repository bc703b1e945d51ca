using System.ComponentModel;
using Orchestrator.Benchmarks;
using Orchestrator.Training;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator bench-scaling`: samples/s on one GPU and on several, with the same groups and with more.</summary>
public sealed class ScalingBenchCommand : AsyncCommand<ScalingBenchCommand.Settings>
{
    public sealed class Settings : StepShapeSettings
    {
        [CommandOption("--devices <LIST>")]
        [Description("GPUs to scale over, comma-separated (default: every GPU of this host). The first also runs the 1-GPU rows.")]
        public string? Devices { get; init; }

        [CommandOption("--shared-workers <N>"), DefaultValue(2), TypeConverter(typeof(WholeNumberConverter))]
        [Description("With a single GPU: workers sharing it in the scaling rows (checks the logic; no speed-up is expected).")]
        public int SharedWorkers { get; init; } = 2;
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var spec = s.ToJobSpec("bench-scaling");
        var devices = s.Devices?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                      ?? Enumerable.Range(0, Math.Max(1, TorchSharp.torch.cuda.device_count())).Select(i => $"cuda:{i}").ToArray();
        var rows = await ScalingBenchmark.RunAsync(spec, devices, s.SharedWorkers, s.Warmup, s.Steps, p => Console.Error.WriteLine($"timing {p}"));
        Console.WriteLine(ScalingBenchmark.ToMarkdown(spec, rows));
        return 0;
    }
}
