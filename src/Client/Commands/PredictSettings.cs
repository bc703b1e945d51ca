using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>The data `predict` reads, where it writes the predictions, and the device and precision it runs in.</summary>
public sealed class PredictSettings : CheckpointSettings
{
    [CommandOption("--data <FILE>")]
    [Description("A .safetensors file holding 'features' (S, D_feat), the layout training reads (any 'targets' are ignored); the feature width must be the job's.")]
    public string Data { get; init; } = "";

    [CommandOption("--output <FILE>")]
    [Description("The .safetensors file to write: 'predictions' (S, N, D_out) float32, the model's raw outputs (logits for bce jobs), and for bce jobs 'probabilities' = sigmoid(predictions). Replaced atomically; its directory must exist.")]
    public string Output { get; init; } = "";

    [CommandOption("--device <DEVICE>"), DefaultValue("cpu")]
    [Description("Where the model runs: cpu or cuda:N. Only one batch's inputs and outputs are on it at a time.")]
    public string Device { get; init; } = "cpu";

    [CommandOption("-b|--batch-size <B>"), DefaultValue(4096), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Samples per forward pass.")]
    public int BatchSize { get; init; } = 4096;

    [CommandOption("--dtype <DTYPE>"), TypeConverter(typeof(DTypeConverter))]
    [Description("Precision the model runs in: float64, float32, float16 or bfloat16 (f64, f32, f16, bf16). Default: the job's dtype, the float32 master weights rounded as training rounded them, so predictions match what validation measured; float32 on a half-precision job uses the masters unrounded.")]
    public TorchSharp.torch.ScalarType? DType { get; init; }

    public override ValidationResult Validate()
    {
        var checkpoint = base.Validate();
        if (!checkpoint.Successful) return checkpoint;
        if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data <FILE> is required: a .safetensors file with 'features'.");
        if (string.IsNullOrWhiteSpace(Output)) return ValidationResult.Error("--output <FILE> is required: the .safetensors file to write.");
        if (BatchSize < 1) return ValidationResult.Error($"--batch-size must be at least 1; got {BatchSize}.");
        if (!Kernels.Devices.IsName(Device)) return ValidationResult.Error($"--device: '{Device}' is not a device; use cpu or cuda:N.");
        return ValidationResult.Success();
    }
}
