using Orchestrator.Kernels;
using Orchestrator.Training.Inference;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator predict`: a checkpoint's model on a data file's features, a batch at a time, the outputs to a .safetensors file.</summary>
public sealed class PredictCommand : Command<PredictSettings>
{
    public override int Execute(CommandContext context, PredictSettings settings, CancellationToken cancellation) =>
        InferenceErrors.Report(() =>
        {
            var device = Devices.Parse(settings.Device);
            OutputFile.CheckWritable(settings.Output, "--output");
            var checkpoint = CheckpointLocation.Open(settings.Checkpoint, settings.Pointer);
            var job = checkpoint.Manifest.Job;
            var columns = settings.FeatureColumns is { } named ? TrainSettings.List(named) : job.Data.Columns.Features;
            using var features = FeatureRows.Open(settings.Data, job, columns, settings.DType ?? job.DType);   // (S, D_feat), read a batch at a time
            using var model = TrainedModel.Load(checkpoint, device, settings.DType);
            var written = PredictionFile.Write(model, features, settings.Output, settings.BatchSize);
            AnsiConsole.WriteLine(
                $"job '{model.Job.Name}' step {model.Step} ({DTypeNames.Name(model.DType)} on {model.Device}): {written.Samples} samples -> " +
                $"'{settings.Output}' predictions ({written.Samples}, {written.Groups}, {written.Outputs}){(written.Probabilities ? " and probabilities" : "")}");
        });
}
