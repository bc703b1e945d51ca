using System.ComponentModel;
using Orchestrator.Training;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>The job the step benchmarks train (default: the seed configuration) and how many steps they time.</summary>
public class StepShapeSettings : CommandSettings
{
    [CommandOption("--dtype <DTYPE>"), DefaultValue("bfloat16"), TypeConverter(typeof(DTypeConverter))]
    [Description("Element type: bfloat16, float16, float32 or float64 (or bf16, f16, f32, f64), as for train.")]
    public TorchSharp.torch.ScalarType DType { get; init; } = TorchSharp.torch.ScalarType.BFloat16;

    [CommandOption("-b|--batch-size <B>"), DefaultValue(2560), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Batch size B.")]
    public int BatchSize { get; init; } = 2560;

    [CommandOption("--groups <N>"), DefaultValue(12), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Groups N.")]
    public int Groups { get; init; } = 12;

    [CommandOption("--features <D_FEAT>"), DefaultValue(1024), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Feature width of the trunk's input.")]
    public int Features { get; init; } = 1024;

    [CommandOption("--input <D_IN>"), DefaultValue(1024), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Input features per group D_in.")]
    public int Input { get; init; } = 1024;

    [CommandOption("--hidden <H>"), DefaultValue(3072), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Hidden size H of each tower.")]
    public int Hidden { get; init; } = 3072;

    [CommandOption("--output <D_OUT>"), DefaultValue(1024), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Output features per group D_out.")]
    public int Output { get; init; } = 1024;

    [CommandOption("--warmup <STEPS>"), DefaultValue(20), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Untimed steps first.")]
    public int Warmup { get; init; } = 20;

    [CommandOption("--steps <STEPS>"), DefaultValue(30), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Timed steps per setup.")]
    public int Steps { get; init; } = 30;

    /// <summary>The benchmark's job, validated.</summary>
    public JobSpec ToJobSpec(string name, TransportChoice transport = TransportChoice.Auto) => new JobSpec
    {
        Name = name,
        Shape = new ModelShape { Groups = Groups, Features = Features, Input = Input, Hidden = Hidden, Output = Output },
        BatchSize = BatchSize,
        DType = DType,
        Transport = transport,
    }.Validate();
}
