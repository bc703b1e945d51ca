using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>What <see cref="PredictionFile.Write"/> wrote.</summary>
public sealed record PredictionSummary(long Samples, int Groups, int Outputs, bool Probabilities);

/// <summary>
/// Predictions for a data file in the training layout (<see cref="SafetensorsSource"/>: "features" (S, D_feat); any
/// "targets" are not read) as a .safetensors file: "predictions" (S, N, D_out) float32, the model's raw outputs (logits
/// for bce jobs), and for bce jobs "probabilities" (S, N, D_out) float32 = sigmoid(predictions). The metadata is
/// <see cref="TrainedModel.Metadata"/>.
/// </summary>
public static class PredictionFile
{
    public const string PredictionsName = "predictions";
    public const string ProbabilitiesName = "probabilities";

    /// <summary>
    /// Predicts <paramref name="features"/> (S, D_feat) (<see cref="ReadFeatures"/>) in batches of
    /// <paramref name="batchSize"/> and writes <paramref name="outputPath"/> (checked writable first).
    /// </summary>
    public static PredictionSummary Write(TrainedModel model, Tensor features, string outputPath, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        string output = OutputFile.CheckWritable(outputPath, "--output");
        using var scope = NewDisposeScope();
        var predictions = model.PredictInBatches(features, batchSize, ScalarType.Float32);      // (S, N, D_out)
        var tensors = new Dictionary<string, Tensor> { [PredictionsName] = predictions };
        bool logits = model.Job.Loss.Kind == LossKind.Bce;
        if (logits) tensors[ProbabilitiesName] = sigmoid(predictions);                          // (S, N, D_out)
        OutputFile.Write(output, stream => SafeTensors.Write(stream, tensors, model.Metadata()));
        return new PredictionSummary(features.shape[0], model.Job.Shape.Groups, model.Job.Shape.Output, logits);
    }

    /// <summary>
    /// "features" (S, D_feat) of the file, on the CPU in the file's dtype, checked against <paramref name="job"/> (read
    /// from the checkpoint's manifest, before its weights are loaded); any other tensor is left unread. The caller owns it.
    /// </summary>
    public static Tensor ReadFeatures(string path, JobSpec job)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--data: file '{path}' does not exist.");
        var tensors = SafeTensors.Read(path, out _, name => name == SafetensorsSource.FeaturesName);
        if (!tensors.TryGetValue(SafetensorsSource.FeaturesName, out var features))
            throw new InvalidDataException($"{path}: no tensor named '{SafetensorsSource.FeaturesName}' (S, {job.Shape.Features}).");
        try
        {
            if (features.dim() != 2 || features.shape[1] != job.Shape.Features)
                throw new InvalidDataException($"{path}: '{SafetensorsSource.FeaturesName}' is ({string.Join(", ", features.shape)}), " +
                                               $"{(features.dim() == 2 ? $"{features.shape[1]} features" : $"{features.dim()} dimensions")}, " +
                                               $"but job '{job.Name}' was trained on {job.Shape.Features} features: (S, {job.Shape.Features}).");
            if (!features.is_floating_point())
                throw new InvalidDataException($"{path}: '{SafetensorsSource.FeaturesName}' must be floating point; got {features.dtype}.");
            if (features.shape[0] == 0) throw new InvalidDataException($"{path}: the file holds no samples.");
            return features;
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }
}
