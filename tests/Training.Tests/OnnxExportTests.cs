using Microsoft.ML.OnnxRuntime;
using Orchestrator.Training.Inference;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Exported ONNX models, run by ONNX Runtime, against `predict`'s float32 model.</summary>
public sealed class OnnxExportTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    /// <summary>The outputs ONNX Runtime computes for <paramref name="features"/> (B, D_feat) float32, by output name.</summary>
    static Dictionary<string, Tensor> Run(InferenceSession session, Tensor features)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(features.data<float>().ToArray(), features.shape);
        using var options = new RunOptions();
        using var results = session.Run(options, [OnnxExport.InputName], [input], session.OutputNames);
        return session.OutputNames.Zip(results).ToDictionary(r => r.First,
            r => tensor(r.Second.GetTensorDataAsSpan<float>().ToArray(), r.Second.GetTensorTypeAndShape().Shape));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void The_exported_model_predicts_what_predict_does(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check, dtype);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU, ScalarType.Float32);
        string path = scratch.NewFile(".onnx");
        OnnxExport.Write(model, path);

        using var session = new InferenceSession(path);
        Assert.Equal([OnnxExport.InputName], session.InputNames);
        Assert.Equal([OnnxExport.OutputName], session.OutputNames);
        Assert.Equal([-1L, job.Shape.Features], session.InputMetadata[OnnxExport.InputName].Dimensions.Select(d => (long)d));
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(job.Name, metadata["job"]);
        Assert.Equal("3", metadata["step"]);
        Assert.Equal("mse", metadata["loss"]);
        Assert.Equal(job.Shape.Hidden.ToString(), metadata["hidden"]);
        foreach (long batch in new long[] { 1, 7 })
        {
            var features = check.Randn([batch, job.Shape.Features], ScalarType.Float32);
            var onnx = Run(session, features)[OnnxExport.OutputName];
            Assert.Equal([batch, job.Shape.Groups, job.Shape.Output], onnx.shape);
            check.Close(onnx, model.PredictInBatches(features, batchSize: 4, ScalarType.Float32), 1e-5, $"ONNX Runtime at batch {batch}");
        }
    }

    [Fact]
    public void A_bce_model_also_outputs_probabilities()
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = InferenceJobs.Bce(check, scratch);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU, ScalarType.Float32);
        string path = scratch.NewFile(".onnx");
        OnnxExport.Write(model, path);

        using var session = new InferenceSession(path);
        Assert.Equal([OnnxExport.OutputName, OnnxExport.ProbabilitiesName], session.OutputNames);
        var features = check.Randn([7, job.Shape.Features], ScalarType.Float32);
        var outputs = Run(session, features);
        check.Close(outputs[OnnxExport.OutputName], model.PredictInBatches(features, batchSize: 7, ScalarType.Float32), 1e-5, "logits");
        check.Close(outputs[OnnxExport.ProbabilitiesName], sigmoid(outputs[OnnxExport.OutputName]), 1e-6, "probabilities");
        Assert.Equal("bce", session.ModelMetadata.CustomMetadataMap["loss"]);
    }

    [Fact]
    public void Export_takes_the_float32_masters_and_refuses_other_precisions()
    {
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check, ScalarType.Float64);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU);
        string path = scratch.NewFile(".onnx");
        Assert.Contains("float32", Assert.Throws<ArgumentException>(() => OnnxExport.Write(model, path)).Message);
        Assert.False(File.Exists(path));
    }
}
