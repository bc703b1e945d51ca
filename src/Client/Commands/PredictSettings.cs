using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>The data `predict` reads, where it writes the predictions, and the device and precision it runs in.</summary>
public sealed class PredictSettings : CheckpointSettings
{
    [CommandOption("--data <FILE>")]
    [Description("A .safetensors file holding 'features' (S, D_feat), the layout training reads, or a .parquet file with the columns of --feature-columns (any targets are ignored); the feature width must be the job's. Read a batch at a time.")]
    public string Data { get; init; } = "";

    [CommandOption("--feature-columns <LIST>")]
    [Description("Parquet: the columns holding the D_feat features, comma-separated, in order, as `train --feature-columns` takes them. Default: the columns the job trained on (features for a job that trained on safetensors or synthetic data).")]
    public string? FeatureColumns { get; init; }

    [CommandOption("--output <FILE>")]
    [Description("The .safetensors file to write: 'predictions' (S, N, D_out) float32, the model's raw outputs (logits for bce jobs), and for bce jobs 'probabilities' = sigmoid(predictions). Written a batch at a time and replaced atomically; its directory must exist.")]
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
        if (string.IsNullOrWhiteSpace(Data)) return ValidationResult.Error("--data <FILE> is required: a .safetensors file with 'features' or a .parquet file.");
        if (string.IsNullOrWhiteSpace(Output)) return ValidationResult.Error("--output <FILE> is required: the .safetensors file to write.");
        if (BatchSize < 1) return ValidationResult.Error($"--batch-size must be at least 1; got {BatchSize}.");
        if (FeatureColumns is not null && TrainSettings.List(FeatureColumns).Length == 0) return ValidationResult.Error("--feature-columns names no column.");
        if (!Kernels.Devices.IsName(Device)) return ValidationResult.Error($"--device: '{Device}' is not a device; use cpu or cuda:N.");
        return ValidationResult.Success();
    }
}
