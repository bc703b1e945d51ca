using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using Orchestrator.Training.Inference;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>`orchestrator predict` and `export` as processes, on a checkpoint this test trains and writes.</summary>
public sealed class PredictExportCommandTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("orchestrator-predict-test").FullName;
    readonly int seed = Random.Shared.Next();
    public void Dispose() => Directory.Delete(root, recursive: true);

    static async Task<(int Code, string Output)> Orchestrator(params string[] arguments)
    {
        await using var client = ChildProcess.Start("orchestrator", "dotnet", [Build.ClientDll, .. arguments]);
        Assert.True(await client.WaitForExitAsync(TimeSpan.FromSeconds(120)), $"the client did not exit:\n{client.Output}");
        return (client.ExitCode, client.Output);
    }

    /// <summary>A small float32 job trained for three steps and checkpointed under <see cref="root"/>; returns its job directory.</summary>
    string TrainedJob(JobSpec job)
    {
        var store = new CheckpointStore(Path.Combine(root, "checkpoints"));
        using var trainer = new InProcessTrainer(job);
        for (int i = 0; i < 3; i++) trainer.Step();
        trainer.SaveCheckpoint(store);
        return store.JobDirectory(job.Name);
    }

    string FeaturesFile(long samples, long width)
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(root, $"data-{width}.safetensors");
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = randn([samples, width], generator: new Generator((ulong)seed + (ulong)width)),
        });
        return path;
    }

    [Fact]
    public async Task Predict_then_export_a_checkpoint_written_here()
    {
        var job = new JobSpec
        {
            Name = "cli-predict",
            Shape = new ModelShape { Groups = 3, Features = 6, Input = 4, Hidden = 8, Output = 2 },
            BatchSize = 16,
            Seed = seed,
            Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
        };
        string jobDirectory = TrainedJob(job);
        string data = FeaturesFile(samples: 11, width: job.Shape.Features);
        string predictions = Path.Combine(root, "preds.safetensors");

        var (code, output) = await Orchestrator("predict", "--checkpoint", jobDirectory, "--data", data, "--output", predictions, "--batch-size", "4");
        Assert.True(code == 0, output);
        Assert.Contains("job 'cli-predict' step 3", output);
        using (var scope = NewDisposeScope())
        {
            var written = SafeTensors.Read(predictions);
            using var model = TrainedModel.Load(CheckpointLocation.Open(jobDirectory, CheckpointPointer.Latest), CPU);
            var features = SafeTensors.Read(data)[SafetensorsSource.FeaturesName];
            var expected = model.PredictInBatches(features, batchSize: 4, ScalarType.Float32);   // (S, N, D_out)
            var actual = written[PredictionFile.PredictionsName];
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(actual.eq(expected).all().item<bool>(), "the command's predictions are the model's");   // exactly
            foreach (var t in written.Values) t.Dispose();
        }

        // The same features as a Parquet list column: the same predictions, a batch at a time through row groups of 3.
        string parquet = Path.Combine(root, "data.parquet"), fromParquet = Path.Combine(root, "parquet-preds.safetensors");
        using (var scope = NewDisposeScope())
            ParquetFiles.Write(parquet, 11, 3, ParquetFiles.List("x", ParquetFiles.Rows<float>(SafeTensors.Read(data)[SafetensorsSource.FeaturesName])));
        (code, output) = await Orchestrator("predict", "--checkpoint", jobDirectory, "--data", parquet, "--feature-columns", "x", "--output", fromParquet, "--batch-size", "4");
        Assert.True(code == 0, output);
        using (var scope = NewDisposeScope())
            Assert.True(Exactly.Same(SafeTensors.Read(fromParquet)[PredictionFile.PredictionsName], SafeTensors.Read(predictions)[PredictionFile.PredictionsName]),
                "Parquet input predicts what its safetensors copy does");
        (code, output) = await Orchestrator("predict", "--checkpoint", jobDirectory, "--data", parquet, "--output", fromParquet);
        Assert.Equal(1, code);
        Assert.Contains("no column named 'features'", output);   // the job trained on safetensors: its features column is "features"

        string onnx = Path.Combine(root, "model.onnx");
        (code, output) = await Orchestrator("export", "--checkpoint", Path.Combine(jobDirectory, CheckpointPaths.StepDirectoryName(3)), "--onnx", onnx);
        Assert.True(code == 0, output);
        var exported = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
        Assert.Equal(OnnxExport.Opset, exported.OpsetImport.Single().Version);
        Assert.Equal("cli-predict", exported.MetadataProps.Single(p => p.Key == "job").Value);
        Assert.Equal([OnnxExport.OutputName], exported.Graph.Output.Select(o => o.Name));

        string wrongWidth = FeaturesFile(samples: 5, width: job.Shape.Features + 3);
        (code, output) = await Orchestrator("predict", "--checkpoint", jobDirectory, "--data", wrongWidth, "--output", Path.Combine(root, "other.safetensors"));
        Assert.Equal(1, code);
        Assert.Contains($"'features' is (5, {job.Shape.Features + 3})", output);
        Assert.Contains($"trained on {job.Shape.Features} features", output);
        Assert.DoesNotContain("   at ", output);   // a message, not a stack trace
        Assert.False(File.Exists(Path.Combine(root, "other.safetensors")));
    }

    [Theory]
    [InlineData("predict", new[] { "--checkpoint <DIR>", "--best", "--data <FILE>", "--feature-columns <LIST>", "--output <FILE>", "--device <DEVICE>", "--batch-size <B>", "--dtype <DTYPE>" })]
    [InlineData("export", new[] { "--checkpoint <DIR>", "--best", "--onnx <FILE>" })]
    public async Task Help_explains_every_option(string command, string[] options)
    {
        var (code, output) = await Orchestrator(command, "--help");
        Assert.True(code == 0, output);
        Assert.DoesNotContain("Error:", output);
        foreach (var option in options) Assert.Contains(option, output);
    }

    [Fact]
    public async Task A_missing_option_or_checkpoint_is_named()
    {
        var (code, output) = await Orchestrator("export", "--checkpoint", Path.Combine(root, "none"));
        Assert.NotEqual(0, code);
        Assert.Contains("--onnx <FILE> is required", output);
        (code, output) = await Orchestrator("export", "--checkpoint", Path.Combine(root, "none"), "--onnx", Path.Combine(root, "m.onnx"));
        Assert.Equal(1, code);
        Assert.Contains("does not exist", output);
    }
}
