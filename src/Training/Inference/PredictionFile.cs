using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>What <see cref="PredictionFile.Write"/> wrote.</summary>
public sealed record PredictionSummary(long Samples, int Groups, int Outputs, bool Probabilities);

/// <summary>
/// Predictions for a data file's features (<see cref="IFeatureRows"/>: a safetensors file in the training layout or a
/// Parquet file's feature columns) as a .safetensors file: "predictions" (S, N, D_out) float32, the model's raw outputs
/// (logits for bce jobs), and for bce jobs "probabilities" (S, N, D_out) float32 = sigmoid(predictions). The metadata
/// is <see cref="TrainedModel.Metadata"/>.
/// </summary>
public static class PredictionFile
{
    public const string PredictionsName = "predictions";
    public const string ProbabilitiesName = "probabilities";

    /// <summary>
    /// Predicts <paramref name="features"/> <paramref name="batchSize"/> rows at a time and writes
    /// <paramref name="outputPath"/> (checked writable first) as it goes: the header first, then each batch's outputs at
    /// their place in the file. Memory holds one batch of features and its outputs, whatever the file's size.
    /// </summary>
    public static PredictionSummary Write(TrainedModel model, IFeatureRows features, string outputPath, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        string output = OutputFile.CheckWritable(outputPath, "--output");
        var shape = model.Job.Shape;
        long samples = features.Rows;
        bool logits = model.Job.Loss.Kind == LossKind.Bce;
        long[] outputs = [samples, shape.Groups, shape.Output];                                           // (S, N, D_out)
        var tensors = new List<(string, ScalarType, long[])> { (PredictionsName, ScalarType.Float32, outputs) };
        if (logits) tensors.Add((ProbabilitiesName, ScalarType.Float32, outputs));
        OutputFile.Write(output, stream =>
        {
            var file = new SafeTensorsWriter(stream, tensors, model.Metadata());
            for (long start = 0; start < samples; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long count = Math.Min(batchSize, samples - start);
                var predictions = model.Predict(features.Read(start, count).to(model.DType, model.Device)).to(ScalarType.Float32, CPU);   // (b, N, D_out)
                file.WriteRows(PredictionsName, start, predictions);
                if (logits) file.WriteRows(ProbabilitiesName, start, sigmoid(predictions));
            }
            file.Complete();
        });
        return new PredictionSummary(samples, shape.Groups, shape.Output, logits);
    }
}
