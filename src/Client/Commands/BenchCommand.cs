using System.ComponentModel;
using Orchestrator.Benchmarks;
using Orchestrator.Kernels;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator bench`: the kernel benchmark table (loop vs ours, against measured ceilings).</summary>
public sealed class BenchCommand : Command<BenchCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--device <DEVICE>"), DefaultValue("cuda:0")]
        [Description("Device to benchmark: cuda:N, or cpu (small shapes recommended).")]
        public string Device { get; init; } = "cuda:0";

        [CommandOption("--dtype <DTYPE>"), DefaultValue("bfloat16"), TypeConverter(typeof(DTypeConverter))]
        [Description("Element type: bfloat16, float16, float32 or float64 (or bf16, f16, f32, f64), as for train.")]
        public TorchSharp.torch.ScalarType DType { get; init; } = TorchSharp.torch.ScalarType.BFloat16;

        [CommandOption("-b|--batch-size|--batch <B>"), DefaultValue(2560L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Batch size B of the (B, N, D) activations (--batch: the older spelling).")]
        public long Batch { get; init; } = 2560;

        [CommandOption("--groups <N>"), DefaultValue(12L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Number of groups N.")]
        public long Groups { get; init; } = 12;

        [CommandOption("--input|--input-dim <D_IN>"), DefaultValue(1024L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Input features per group D_in.")]
        public long InputDim { get; init; } = 1024;

        [CommandOption("--linear-output|--output-dim <D_OUT>"), DefaultValue(3072L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Output features per group of the grouped linear case.")]
        public long OutputDim { get; init; } = 3072;

        [CommandOption("--hidden|--hidden-dim <H>"), DefaultValue(3072L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Hidden size H of the SwiGLU MLP case.")]
        public long HiddenDim { get; init; } = 3072;

        [CommandOption("--output|--mlp-output-dim <D>"), DefaultValue(1024L), TypeConverter(typeof(LongWholeNumberConverter))]
        [Description("Output features per group D_out of the SwiGLU MLP case, as train's --output.")]
        public long MlpOutputDim { get; init; } = 1024;

        [CommandOption("--warmup <COUNT>"), DefaultValue(5), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Untimed repetitions before timing.")]
        public int Warmup { get; init; } = 5;

        [CommandOption("--reps <COUNT>"), DefaultValue(50), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Timed repetitions; the table shows the median.")]
        public int Repetitions { get; init; } = 50;

        [CommandOption("--input-sets <COUNT>"), DefaultValue(4), TypeConverter(typeof(WholeNumberConverter))]
        [Description("Distinct input tensors rotated between repetitions, so caches do not flatter.")]
        public int InputSets { get; init; } = 4;

        [CommandOption("--json <FILE>")]
        [Description("Also write the results as JSON to this file.")]
        public string? Json { get; init; }

        public override Spectre.Console.ValidationResult Validate()
        {
            if (new[] { Batch, Groups, InputDim, OutputDim, HiddenDim, MlpOutputDim }.Any(v => v <= 0))
                return Spectre.Console.ValidationResult.Error("every dimension (--batch-size, --groups, --input, --linear-output, --hidden, --output) must be positive");
            if (Warmup < 0 || Repetitions < 1 || InputSets < 1)
                return Spectre.Console.ValidationResult.Error("--warmup must be >= 0, --reps and --input-sets >= 1");
            return Spectre.Console.ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var settings = new BenchmarkSettings(s.Batch, s.Groups, s.InputDim, s.OutputDim, s.HiddenDim, s.MlpOutputDim,
            s.DType, Devices.Parse(s.Device), s.Warmup, s.Repetitions, s.InputSets);
        var report = KernelBenchmark.Run(settings, p => Console.Error.WriteLine($"timing {p}"));
        Console.WriteLine(KernelBenchmark.ToMarkdown(report));
        if (s.Json is not null) File.WriteAllText(s.Json, KernelBenchmark.ToJson(report));
        return 0;
    }
}
