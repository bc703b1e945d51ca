using Orchestrator.Kernels;
using Orchestrator.Training.Data;
using Orchestrator.Training.Inference;
using TorchSharp;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

/// <summary>
/// `predict`'s model: a checkpoint's trunk and towers, run batch by batch, against the trainer that wrote the checkpoint
/// and against the per-group loop reference. In the tensor-lifetime collection: the streaming test counts live tensors,
/// which tests running beside it would disturb.
/// </summary>
[Collection(nameof(TensorLifetimeTests))]
public sealed class PredictionTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Predictions_are_the_trainers_forward_exactly_and_the_loop_references_math(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check, dtype);
        using var trainer = InferenceJobs.TrainAndSave(job, store);
        var features = check.Randn([23, job.Shape.Features], dtype);   // (S, D_feat): batches of 8, 8 and 7
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU);
        Assert.Equal(dtype, model.DType);
        Assert.Equal(3, model.Step);

        var predicted = model.PredictInBatches(features, batchSize: 8, dtype);   // (S, N, D_out)
        var expected = InferenceJobs.TrainerForward(trainer, features, batchSize: 8);
        Assert.True(Same(predicted, expected), $"predictions differ from the trainer's forward (seed {check.Seed})");

        // The model's math from its definition, in float64: x = silu(features @ W + b) per group, then the loop of SwiGLU towers.
        var (w, b) = (trainer.Trunk.Weight.to(ScalarType.Float64), trainer.Trunk.Bias.to(ScalarType.Float64));
        var x = nn.functional.silu(features.to(ScalarType.Float64).matmul(w) + b).view(23, job.Shape.Groups, job.Shape.Input);
        var reference = LoopReference.SwiGluMlp(x, trainer.Towers.WGateUp.to(ScalarType.Float64), trainer.Towers.WDown.to(ScalarType.Float64));
        check.Close(predicted, reference, Check.ToleranceFor(dtype), "predictions against the loop reference");

        // The file: float32 predictions, the same values rounded once; no probabilities for an mse job.
        string output = scratch.NewFile();
        using var rows = FeatureRows.Open(FileOf(features), job, job.Data.Columns.Features, dtype);
        var written = PredictionFile.Write(model, rows, output, batchSize: 8);
        Assert.Equal(new PredictionSummary(23, job.Shape.Groups, job.Shape.Output, Probabilities: false), written);
        var file = SafeTensors.Read(output, out var metadata);
        Assert.Equal([PredictionFile.PredictionsName], file.Keys);
        Assert.True(Same(file[PredictionFile.PredictionsName], expected.to(ScalarType.Float32)), "the file holds the predictions in float32");
        Assert.Equal(job.Name, metadata["job"]);
        Assert.Equal("3", metadata["step"]);
        Assert.Equal(DTypeNames.Name(dtype), metadata["dtype"]);
        foreach (var t in file.Values) t.Dispose();
    }

    /// <summary>A safetensors file of <paramref name="features"/> (S, D_feat) alone, as `predict --data` takes it.</summary>
    string FileOf(Tensor features)
    {
        string path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features });
        return path;
    }

    /// <summary>
    /// sigmoid of the outputs as the file computes it, batch by batch: sigmoid is vectorised, so an element's last bit
    /// may depend on where it falls in the tensor it is computed in.
    /// </summary>
    static Tensor SigmoidByBatch(Tensor outputs, int batchSize) => cat(outputs.split(batchSize).Select(batch => sigmoid(batch)).ToArray());

    /// <summary>Counts the live tensors each time a batch of features is read: a prediction that kept anything per batch would raise the count.</summary>
    sealed class CountingRows(IFeatureRows inner) : IFeatureRows
    {
        public List<long> LiveAtRead { get; } = [];
        public List<long> Counts { get; } = [];
        public long Rows => inner.Rows;

        public Tensor Read(long start, long count)
        {
            LiveAtRead.Add(LiveTensors.Count);
            Counts.Add(count);
            return inner.Read(start, count);
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void A_file_of_many_batches_is_predicted_a_batch_at_a_time_holding_one_batch_and_equals_the_whole_file_path()
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = InferenceJobs.Bce(check, scratch, ScalarType.Float64);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU);
        var features = check.Randn([61, job.Shape.Features], ScalarType.Float32);   // eight batches of 8 and one of 5, in float32 for a float64 model
        string output = scratch.NewFile();

        using var rows = new CountingRows(FeatureRows.Open(FileOf(features), job, job.Data.Columns.Features, model.DType));
        LiveTensors.WithoutCollection(() => PredictionFile.Write(model, rows, output, batchSize: 8));
        Assert.Equal([8L, 8, 8, 8, 8, 8, 8, 5], rows.Counts);
        Assert.All(rows.LiveAtRead, live => Assert.Equal(rows.LiveAtRead[0], live));   // nothing of a batch outlives it

        // The whole file in memory, predicted in the same batches, then rounded to float32: what predict wrote before it streamed.
        var expected = model.PredictInBatches(features, batchSize: 8, ScalarType.Float32);
        var file = SafeTensors.Read(output);
        Assert.True(Same(file[PredictionFile.PredictionsName], expected), "the streamed predictions differ from the whole file's");
        Assert.True(Same(file[PredictionFile.ProbabilitiesName], SigmoidByBatch(expected, 8)), "the streamed probabilities differ");
        foreach (var t in file.Values) t.Dispose();
    }

    [Fact]
    public void A_Parquet_file_predicts_what_its_safetensors_copy_does()
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check, ScalarType.Float64);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU);
        var features = check.Randn([30, job.Shape.Features], ScalarType.Float32);
        string copy = FileOf(features);
        // Row groups of 7 and batches of 4: batches straddle row groups. One list column, and the same values as scalar columns.
        string listed = scratch.NewFile(".parquet"), scalars = scratch.NewFile(".parquet");
        ParquetFiles.Write(listed, 30, 7, ParquetFiles.List("x", ParquetFiles.Rows<float>(features)));
        var names = Enumerable.Range(0, job.Shape.Features).Select(k => $"f{k}").ToArray();
        ParquetFiles.Write(scalars, 30, 7, [.. names.Select((name, k) => ParquetFiles.Scalar(name, ParquetFiles.ColumnOf<float>(features, k)))]);

        Tensor Predicted(string data, IReadOnlyList<string> columns)
        {
            string output = scratch.NewFile();
            using (var rows = FeatureRows.Open(data, job, columns, model.DType)) PredictionFile.Write(model, rows, output, batchSize: 4);
            return SafeTensors.Read(output)[PredictionFile.PredictionsName];
        }
        var expected = Predicted(copy, job.Data.Columns.Features);
        Assert.True(Same(Predicted(listed, ["x"]), expected), "a list column predicts what the safetensors copy does");
        Assert.True(Same(Predicted(scalars, names), expected), "scalar columns predict what the safetensors copy does");
        var missing = Assert.Throws<InvalidDataException>(() => FeatureRows.Open(listed, job, ["features"], model.DType));
        Assert.Contains("no column named 'features'", missing.Message);
    }

    [Fact]
    public void The_writer_refuses_rows_out_of_order_and_a_file_missing_rows()
    {
        using var scope = NewDisposeScope();
        using var stream = new MemoryStream();
        var writer = new SafeTensorsWriter(stream, [("a", ScalarType.Float32, [4L, 2])]);
        writer.WriteRows("a", 0, check.Randn([3, 2], ScalarType.Float32));
        Assert.Contains("do not follow the 3 rows written", Assert.Throws<ArgumentException>(() => writer.WriteRows("a", 0, check.Randn([1, 2], ScalarType.Float32))).Message);
        Assert.Contains("do not follow", Assert.Throws<ArgumentException>(() => writer.WriteRows("a", 3, check.Randn([1, 2], ScalarType.Float64))).Message);
        Assert.Equal("tensor 'a' got 3 of its 4 rows.", Assert.Throws<InvalidOperationException>(writer.Complete).Message);
    }

    [Fact]
    public void A_bfloat16_job_predicts_as_it_trained_and_in_float32_from_its_master_weights()
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check, ScalarType.BFloat16);
        using var trainer = InferenceJobs.TrainAndSave(job, store);
        var checkpoint = CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest);
        var features = check.Randn([9, job.Shape.Features], ScalarType.Float32);

        using var asTrained = TrainedModel.Load(checkpoint, CPU);
        Assert.Equal(ScalarType.BFloat16, asTrained.DType);
        var predicted = asTrained.PredictInBatches(features, batchSize: 9, ScalarType.BFloat16);
        Assert.True(Same(predicted, InferenceJobs.TrainerForward(trainer, features.to(ScalarType.BFloat16), batchSize: 9)),
            "bf16 predictions differ from the trainer's bf16 forward");

        using var masters = TrainedModel.Load(checkpoint, CPU, ScalarType.Float32);
        Assert.True(Same(masters.Trunk.Weight, trainer.Trunk.Weight) && Same(masters.Towers.WGateUp, trainer.Towers.WGateUp)
                    && Same(masters.Towers.WDown, trainer.Towers.WDown), "float32 inference uses the float32 masters");
        check.Close(masters.PredictInBatches(features, batchSize: 4, ScalarType.Float32), predicted, 0.1, "float32 against bf16 predictions");
    }

    [Fact]
    public void A_bce_job_writes_its_logits_and_their_sigmoid()
    {
        using var scope = NewDisposeScope();
        var store = InferenceJobs.Store(scratch);
        var job = InferenceJobs.Bce(check, scratch);
        using var trainer = InferenceJobs.TrainAndSave(job, store);
        using var model = TrainedModel.Load(CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest), CPU);
        var features = check.Randn([17, job.Shape.Features], ScalarType.Float32);
        string output = scratch.NewFile();

        using (var rows = FeatureRows.Open(FileOf(features), job, job.Data.Columns.Features, model.DType))
            Assert.True(PredictionFile.Write(model, rows, output, batchSize: 5).Probabilities);
        var file = SafeTensors.Read(output);
        var (logits, probabilities) = (file[PredictionFile.PredictionsName], file[PredictionFile.ProbabilitiesName]);
        Assert.True(Same(logits, InferenceJobs.TrainerForward(trainer, features, batchSize: 5)), "predictions are the raw logits");
        Assert.True(logits.lt(0).any().item<bool>() || logits.gt(1).any().item<bool>(), "logits are not probabilities already");
        Assert.True(Same(probabilities, SigmoidByBatch(logits, 5)), "probabilities = sigmoid(predictions)");
        foreach (var t in file.Values) t.Dispose();
    }

    [Fact]
    public void A_job_directory_gives_its_latest_or_best_checkpoint_and_a_step_directory_itself()
    {
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check);
        using var trainer = InferenceJobs.TrainAndSave(job, store, steps: 2);
        trainer.Step();
        trainer.Step();
        trainer.SaveCheckpoint(store);
        string jobDirectory = store.JobDirectory(job.Name);
        string second = Path.Combine(jobDirectory, Checkpoints.CheckpointPaths.StepDirectoryName(2));

        Assert.Equal(4, CheckpointLocation.Open(jobDirectory, CheckpointPointer.Latest).Manifest.Step);
        Assert.Equal(2, CheckpointLocation.Open(second + "/", CheckpointPointer.Latest).Manifest.Step);
        var noBest = Assert.Throws<FileNotFoundException>(() => CheckpointLocation.Open(jobDirectory, CheckpointPointer.Best));
        Assert.Contains("no best checkpoint", noBest.Message);
        store.MarkBest(job.Name, 2);
        Assert.Equal(2, CheckpointLocation.Open(jobDirectory, CheckpointPointer.Best).Manifest.Step);
        var stepBest = Assert.Throws<ArgumentException>(() => CheckpointLocation.Open(second, CheckpointPointer.Best));
        Assert.Contains("--best", stepBest.Message);
    }

    [Fact]
    public void Features_of_another_width_are_refused_naming_both_widths()
    {
        var job = CheckpointJobs.Small(check);
        string data = InferenceJobs.FeaturesFile(check, scratch, samples: 10, width: job.Shape.Features + 2);
        IFeatureRows Open(string path) => FeatureRows.Open(path, job, job.Data.Columns.Features, job.DType);
        var error = Assert.Throws<InvalidDataException>(() => Open(data));
        Assert.Contains($"(10, {job.Shape.Features + 2})", error.Message);
        Assert.Contains($"trained on {job.Shape.Features} features", error.Message);
        Assert.Contains(data, error.Message);

        var missing = Assert.Throws<FileNotFoundException>(() => Open(scratch.NewFile()));
        Assert.Contains("--data", missing.Message);
        string targetsOnly = scratch.NewFile();
        using (var targets = check.Randn([4, 2], ScalarType.Float32))
            SafeTensors.Write(targetsOnly, new Dictionary<string, Tensor> { [SafetensorsSource.TargetsName] = targets });
        Assert.Contains("no tensor named 'features'", Assert.Throws<InvalidDataException>(() => Open(targetsOnly)).Message);
    }

    [Fact]
    public void Missing_checkpoints_are_refused_by_name()
    {
        string nowhere = Path.Combine(scratch.Root, "nowhere");
        Assert.Contains("does not exist", Assert.Throws<FileNotFoundException>(() => CheckpointLocation.Open(nowhere, CheckpointPointer.Latest)).Message);
        string empty = Directory.CreateDirectory(Path.Combine(scratch.Root, "empty-job")).FullName;
        Assert.Contains("holds no checkpoint", Assert.Throws<FileNotFoundException>(() => CheckpointLocation.Open(empty, CheckpointPointer.Latest)).Message);
        string missingStep = Path.Combine(scratch.Root, "job", Checkpoints.CheckpointPaths.StepDirectoryName(5));
        Directory.CreateDirectory(missingStep);
        Assert.Contains("manifest is missing", Assert.Throws<InvalidDataException>(() => CheckpointLocation.Open(missingStep, CheckpointPointer.Latest)).Message);
    }

    [Fact]
    public void A_damaged_checkpoint_file_is_refused_before_anything_is_predicted()
    {
        var store = InferenceJobs.Store(scratch);
        var job = CheckpointJobs.Small(check);
        using (InferenceJobs.TrainAndSave(job, store)) { }
        var checkpoint = CheckpointLocation.Open(store.JobDirectory(job.Name), CheckpointPointer.Latest);
        string shard = Path.Combine(checkpoint.Directory, checkpoint.Manifest.Shards[0].File);
        var bytes = File.ReadAllBytes(shard);
        bytes[^3] ^= 0x40;   // a bit of a weight
        File.WriteAllBytes(shard, bytes);

        var error = Assert.Throws<InvalidDataException>(() => TrainedModel.Load(checkpoint, CPU));
        Assert.Contains("checksum mismatch", error.Message);
        Assert.Contains(shard, error.Message);
    }

    [Fact]
    public void An_output_that_cannot_be_written_is_refused_before_predicting()
    {
        string noDirectory = Path.Combine(scratch.Root, "missing", "preds.safetensors");
        var error = Assert.Throws<IOException>(() => OutputFile.CheckWritable(noDirectory, "--output"));
        Assert.Contains("--output", error.Message);
        Assert.Contains("does not exist", error.Message);
        Assert.Contains("is a directory", Assert.Throws<IOException>(() => OutputFile.CheckWritable(scratch.Root, "--output")).Message);
        Assert.Empty(Directory.EnumerateFiles(scratch.Root));   // the probe is gone
    }
}
