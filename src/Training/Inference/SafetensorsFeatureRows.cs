using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>"features" (S, D_feat) of a safetensors file in the training layout, read from the file a run of rows at a time.</summary>
sealed class SafetensorsFeatureRows : IFeatureRows
{
    readonly SafeTensorsRows features;

    public SafetensorsFeatureRows(string path, JobSpec job)
    {
        features = new SafeTensorsRows(path, SafetensorsSource.FeaturesName);
        try
        {
            var shape = features.Shape;
            if (shape.Length != 2 || shape[1] != job.Shape.Features)
                throw new InvalidDataException($"{path}: '{SafetensorsSource.FeaturesName}' is ({string.Join(", ", shape)}), " +
                                               $"{(shape.Length == 2 ? $"{shape[1]} features" : $"{shape.Length} dimensions")}, " +
                                               $"but job '{job.Name}' was trained on {job.Shape.Features} features: (S, {job.Shape.Features}).");
            if (!is_floating_point(features.DType))
                throw new InvalidDataException($"{path}: '{SafetensorsSource.FeaturesName}' must be floating point; got {features.DType}.");
            if (shape[0] == 0) throw new InvalidDataException($"{path}: the file holds no samples.");
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }

    public long Rows => features.Rows;

    public Tensor Read(long start, long count) => features.Read(start, count);

    public void Dispose() => features.Dispose();
}
