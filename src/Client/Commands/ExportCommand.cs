using System.ComponentModel;
using Orchestrator.Training.Inference;
using Spectre.Console;
using Spectre.Console.Cli;
using static TorchSharp.torch;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator export`: a checkpoint's model as an ONNX file.</summary>
public sealed class ExportCommand : Command<ExportCommand.Settings>
{
    public sealed class Settings : CheckpointSettings
    {
        [CommandOption("--onnx <FILE>")]
        [Description("The ONNX file to write (opset 17): input 'features' (batch, D_feat) float32, output 'predictions' (batch, N, D_out), the raw outputs, and for bce jobs 'probabilities' = sigmoid; float32 weights (the checkpoint's masters); the job, step, shape and loss in its metadata. Replaced atomically; its directory must exist.")]
        public string Onnx { get; init; } = "";

        public override ValidationResult Validate()
        {
            var checkpoint = base.Validate();
            if (!checkpoint.Successful) return checkpoint;
            return string.IsNullOrWhiteSpace(Onnx) ? ValidationResult.Error("--onnx <FILE> is required: the ONNX file to write.") : ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellation) =>
        InferenceErrors.Report(() =>
        {
            OutputFile.CheckWritable(settings.Onnx, "--onnx");
            using var model = TrainedModel.Load(CheckpointLocation.Open(settings.Checkpoint, settings.Pointer), CPU, ScalarType.Float32);
            OnnxExport.Write(model, settings.Onnx);
            var shape = model.Job.Shape;
            AnsiConsole.WriteLine(
                $"job '{model.Job.Name}' step {model.Step} -> '{settings.Onnx}': features (batch, {shape.Features}) -> predictions (batch, {shape.Groups}, {shape.Output})" +
                $"{(model.Job.Loss.Kind == Training.LossKind.Bce ? " and probabilities" : "")}, opset {OnnxExport.Opset}");
        });
}
