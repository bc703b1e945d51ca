using System.ComponentModel;
using Orchestrator.Benchmarks;
using Orchestrator.Kernels;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator gpu-check`: the kernels' correctness on a GPU against the float64 loop reference.</summary>
public sealed class GpuCheckCommand : AsyncCommand<GpuCheckCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--device <DEVICE>"), DefaultValue("cuda:0")]
        [Description("Device to check: cuda:N (or cpu, to try the command without a GPU).")]
        public string Device { get; init; } = "cuda:0";

        [CommandOption("--dtypes <LIST>"), DefaultValue("bfloat16,float16,float32,float64")]
        [Description("Comma-separated dtypes to check: bfloat16, float16, float32, float64 (or bf16, f16, f32, f64), as for train's --dtype.")]
        public string DTypes { get; init; } = "bfloat16,float16,float32,float64";

        /// <summary>--dtypes read (<see cref="Validate"/> has refused a list with an unknown name).</summary>
        public IReadOnlyList<ScalarType> DTypeList => DTypes.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(DTypeConverter.Read).ToList();

        public override Spectre.Console.ValidationResult Validate()
        {
            try
            {
                _ = DTypeList;
                return Spectre.Console.ValidationResult.Success();
            }
            catch (FormatException e)
            {
                return Spectre.Console.ValidationResult.Error($"--dtypes: {e.Message}");
            }
        }

        [CommandOption("--quick")]
        [Description("Skip the seed-sized shape (B=2560, N=12, 1024->3072->1024); check only the small edge-case shapes.")]
        public bool Quick { get; init; }

        [CommandOption("--cluster")]
        [Description("Also train small jobs on two silos sharing --device, the remote worker reached through each transport (message, process, channel: two silos of this process; ipc: this process and a silo process beside it), and compare each with the single-process trainer on the CPU.")]
        public bool Cluster { get; init; }

        [CommandOption("--output <FILE>")]
        [Description("Also write the result table (markdown) to this file.")]
        public string? Output { get; init; }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellation)
    {
        var device = Devices.Parse(settings.Device);
        var dtypes = settings.DTypeList;
        var shapes = settings.Quick ? GpuCheck.DefaultShapes[1..] : GpuCheck.DefaultShapes;
        var results = GpuCheck.Run(device, dtypes, shapes, p => Console.Error.WriteLine($"checking {p}"));
        if (settings.Cluster)
            results.AddRange(await ClusterGpuCheck.RunAsync(settings.Device, dtypes.Where(d => d is ScalarType.Float64 or ScalarType.Float32).ToList(),
                p => Console.Error.WriteLine($"checking {p}")));

        var lines = new List<string>
        {
            $"device {device}; relative error ‖ours − ref‖/‖ref‖ against the per-group loop in float64 autograd from the same rounded inputs",
            "",
            "| dtype | shape | quantity | relative error | tolerance | result |",
            "| --- | --- | --- | ---: | ---: | --- |",
        };
        lines.AddRange(results.Select(r =>
            $"| {r.DType} | {r.Shape} | {r.Quantity} | {r.RelativeError:E2} | {r.Tolerance:E0} | {(r.Passed ? "pass" : "FAIL")} |"));
        int failed = results.Count(r => !r.Passed);
        lines.Add("");
        lines.Add($"{results.Count - failed} passed, {failed} failed");
        foreach (var line in lines) Console.WriteLine(line);
        if (settings.Output is not null) File.WriteAllLines(settings.Output, lines);
        return failed == 0 ? 0 : 1;
    }
}
