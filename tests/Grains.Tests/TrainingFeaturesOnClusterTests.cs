using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// A job with every training option on, sharded over the cluster's silos, against the single-process trainer in
/// float64: losses, learning rates, global gradient norms, validation metrics and parameters agree to 1e-9.
/// </summary>
[Collection(ClusterCollection.Name)]
public class TrainingFeaturesOnClusterTests(ClusterFixture fixture)
{
    static string DataFile(ScratchDirectory scratch, Check check, ModelShape shape, long samples)
    {
        using var scope = NewDisposeScope();
        string path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = check.Randn([samples, shape.Features], ScalarType.Float64),
            [SafetensorsSource.TargetsName] = check.Randn([samples, shape.Groups, shape.Output], ScalarType.Float64).gt(0).to(ScalarType.Float64),
        });
        return path;
    }

    [Theory]
    [InlineData(TransportChoice.Message, 1)]
    [InlineData(TransportChoice.Channel, 2)]
    public async Task A_clipped_scheduled_weighted_BCE_job_with_validation_matches_the_single_process_trainer(TransportChoice transport, int perDevice)
    {
        using var scratch = new ScratchDirectory();
        var check = new Check();
        var shape = new ModelShape { Groups = 5, Features = 6, Input = 4, Hidden = 8, Output = 3 };
        var spec = new JobSpec
        {
            Name = $"features-{Guid.NewGuid():N}",
            Shape = shape,
            BatchSize = 16,
            DType = ScalarType.Float64,
            Steps = 10,
            Seed = check.Seed,
            Data = new DataSpec { Source = "safetensors", Path = DataFile(scratch, check, shape, 120), DataSeed = check.Seed + 1L },
            Optimizer = new OptimizerSpec
            {
                LearningRate = 0.05, ClipNorm = 0.05,
                Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine, WarmupSteps = 2, MinLearningRate = 0.001 },
            },
            Loss = new LossSpec { Kind = LossKind.Bce, GroupWeights = [1, 0.5, 2, 0.25, 1.5] },
            Validation = new ValidationSpec { Fraction = 0.2, EverySteps = 3 },
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, Keep = 1 },
            WorkersPerDevice = perDevice,
            Transport = transport,
        };
        using var reference = new InProcessTrainer(spec);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        try
        {
            Assert.True(status.Workers.Length >= 3, $"{status.Workers.Length} workers: the job should be sharded over the silos");
            var evaluations = await StepsMatch(coordinator, reference, check);
            Assert.Equal([3L, 6, 9, 10], evaluations.Select(e => e.Step));
            Assert.Equal(24, evaluations[0].Samples);   // 120 - floor(120 * 0.8)

            var final = await coordinator.GetStatusAsync();
            Assert.Equal((evaluations[^1].Step, evaluations[^1].Loss), (final.LastEval!.Step, final.LastEval.Loss));

            // The best evaluation's checkpoint is kept beside the last, whatever --checkpoint-keep says.
            var store = new CheckpointStore(scratch.Root);
            long best = evaluations.Last(e => e.Best).Step;
            Assert.Equal(best, store.BestStep(spec.Name));
            Assert.Equal(new[] { best, 10L }.Distinct().Order(), store.List(spec.Name));
            Assert.Equal(evaluations[^1].BestLoss, store.Open(spec.Name).Manifest.Validation!.BestLoss);
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task Early_stopping_finishes_the_job_on_the_cluster_and_says_why()
    {
        using var scratch = new ScratchDirectory();
        var check = new Check();
        var shape = new ModelShape { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 };
        string data = DataFile(scratch, check, shape, 64);
        // A learning rate far too large: the validation loss stops improving within a few evaluations.
        var spec = new JobSpec
        {
            Name = $"early-{Guid.NewGuid():N}",
            Shape = shape,
            BatchSize = 8,
            DType = ScalarType.Float64,
            Steps = 400,
            Seed = check.Seed,
            Data = new DataSpec { Source = "safetensors", Path = data, DataSeed = check.Seed + 1L },
            Loss = new LossSpec { Kind = LossKind.Bce },
            Optimizer = new OptimizerSpec { LearningRate = 0.5 },
            Validation = new ValidationSpec { Path = DataFile(scratch, check, shape, 16), EverySteps = 1, EarlyStopPatience = 2 },
        };
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            EvalMetrics? eval = null;
            for (int step = 0; step < spec.Steps && eval?.StopsEarly != true; step++) eval = (await coordinator.StepAsync()).Eval;
            Assert.True(eval is { StopsEarly: true, SinceBest: 2 }, $"never stopped early: last evaluation {eval}");
            var status = await coordinator.GetStatusAsync();
            Assert.Equal(JobState.Finished, status.State);
            Assert.Contains($"stopped early after step {eval!.Step}", status.EndNote);
            Assert.Contains($"best {eval.BestLoss:G6} at step {eval.BestStep}", status.EndNote);
            await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.StepAsync());
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    /// <summary>
    /// Runs the started job to its end beside <paramref name="reference"/>: every step's loss, learning rate and gradient
    /// norm, every evaluation's losses and AUCs (BCE) agree to 1e-9, and so do the parameters at the end. Returns the evaluations.
    /// </summary>
    static async Task<List<EvalMetrics>> StepsMatch(ICoordinatorGrain coordinator, InProcessTrainer reference, Check check)
    {
        var spec = reference.Spec;
        var evaluations = new List<EvalMetrics>();
        for (long step = reference.StepCount; step < spec.Steps; step++)
        {
            var metrics = await coordinator.StepAsync();
            var expected = reference.Step();
            Near(expected.Loss, metrics.Loss, $"step {step}: loss");
            Assert.Equal(expected.LearningRate, metrics.LearningRate);
            Assert.Equal(expected.GradientNorm is null, metrics.GradientNorm is null);
            if (expected.GradientNorm is { } norm) Near(norm, metrics.GradientNorm!.Value, $"step {step}: gradient norm");
            Assert.Equal(expected.Eval is null, metrics.Eval is null);
            if (metrics.Eval is not { } eval) continue;
            evaluations.Add(eval);
            Near(expected.Eval!.Loss, eval.Loss, $"step {step}: validation loss");
            Assert.Equal(expected.Eval.Best, eval.Best);
            for (int g = 0; g < spec.Shape.Groups; g++)
            {
                Near(expected.Eval.Groups[g].Loss, eval.Groups[g].Loss, $"step {step}: group {g} loss");
                Assert.Equal(expected.Eval.Groups[g].Auc is null, eval.Groups[g].Auc is null);
                if (expected.Eval.Groups[g].Auc is { } auc) Near(auc, eval.Groups[g].Auc!.Value, $"step {step}: group {g} AUC");
            }
        }
        Assert.Equal(JobState.Finished, (await coordinator.GetStatusAsync()).State);
        var actual = await coordinator.GetParametersAsync();
        var message = new MessageTensorTransport(long.MaxValue);
        using var scope = NewDisposeScope();
        foreach (var (name, tensor) in reference.Parameters()) check.Close(message.Unpack(actual[name], CPU), tensor, 1e-9, name);
        return evaluations;
    }

    /// <summary>
    /// A Parquet file of <paramref name="samples"/> random rows in row groups of 16: the features as one list column "x",
    /// each group's targets as a list column "t{g}" of D_out 0/1 values.
    /// </summary>
    static string ParquetFile(ScratchDirectory scratch, Check check, ModelShape shape, int samples)
    {
        using var scope = NewDisposeScope();
        string path = scratch.NewFile(".parquet");
        var features = ParquetFiles.Rows<double>(check.Randn([samples, shape.Features], ScalarType.Float64));
        var targets = check.Randn([samples, shape.Groups, shape.Output], ScalarType.Float64).gt(0).to(ScalarType.Float64);
        ParquetFiles.Write(path, samples, 16, [
            ParquetFiles.List("x", features),
            .. Enumerable.Range(0, shape.Groups).Select(g => ParquetFiles.List($"t{g}", ParquetFiles.Rows<double>(targets.select(1, g)))),
        ]);
        return path;
    }

    [Fact]
    public async Task A_Parquet_job_with_a_Parquet_validation_file_matches_the_single_process_trainer()
    {
        using var scratch = new ScratchDirectory();
        var check = new Check();
        var shape = new ModelShape { Groups = 4, Features = 5, Input = 3, Hidden = 6, Output = 2 };
        var spec = new JobSpec
        {
            Name = $"parquet-{Guid.NewGuid():N}",
            Shape = shape,
            BatchSize = 12,
            DType = ScalarType.Float64,
            Steps = 9,
            Seed = check.Seed,
            Data = new DataSpec
            {
                Source = "parquet", Path = ParquetFile(scratch, check, shape, 100), DataSeed = check.Seed + 1L,
                Columns = new ParquetColumns { Features = ["x"], Targets = [.. Enumerable.Range(0, shape.Groups).Select(g => $"t{g}")] },
            },
            Optimizer = new OptimizerSpec { LearningRate = 0.02, ClipNorm = 0.1 },
            Loss = new LossSpec { Kind = LossKind.Bce },
            Validation = new ValidationSpec { Path = ParquetFile(scratch, check, shape, 30), EverySteps = 4 },
        };
        using var reference = new InProcessTrainer(spec);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        try
        {
            Assert.True(status.Workers.Length >= 3, $"{status.Workers.Length} workers: the job should be sharded over the silos");
            var evaluations = await StepsMatch(coordinator, reference, check);
            Assert.Equal([4L, 8, 9], evaluations.Select(e => e.Step));
            Assert.All(evaluations, e => Assert.Equal(30, e.Samples));
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task A_resumed_job_with_a_schedule_clipping_and_validation_continues_exactly_as_one_never_stopped()
    {
        using var scratch = new ScratchDirectory();
        var check = new Check();
        var shape = new ModelShape { Groups = 5, Features = 6, Input = 4, Hidden = 8, Output = 3 };
        var spec = new JobSpec
        {
            Name = $"resume-{Guid.NewGuid():N}",
            Shape = shape,
            BatchSize = 16,
            DType = ScalarType.Float64,
            Steps = 10,
            Seed = check.Seed,
            Data = new DataSpec { Source = "safetensors", Path = DataFile(scratch, check, shape, 96), DataSeed = check.Seed + 1L },
            Optimizer = new OptimizerSpec
            {
                LearningRate = 0.05, ClipNorm = 0.05,
                Schedule = new ScheduleSpec { Kind = ScheduleKind.Linear, WarmupSteps = 2, DecaySteps = 10, MinLearningRate = 0.002 },
            },
            Loss = new LossSpec { Kind = LossKind.Bce },
            Validation = new ValidationSpec { Fraction = 0.25, EverySteps = 2, EarlyStopPatience = 50 },
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, EverySteps = 3 },
        };
        var whole = await Run(spec with { Name = spec.Name + "-whole" }, resume: false);
        var first = await Run(spec with { Steps = 6 }, resume: false);   // checkpointed at steps 3 and 6
        var rest = await Run(spec, resume: true);

        Assert.Equal(whole.Steps, first.Steps.Concat(rest.Steps));   // losses, learning rates, gradient norms and evaluations, bit for bit
        var message = new MessageTensorTransport(long.MaxValue);
        using var scope = NewDisposeScope();
        foreach (var (name, payload) in whole.Parameters)
            Assert.True(Exactly.Same(message.Unpack(payload, CPU), message.Unpack(rest.Parameters[name], CPU)), $"{name} differs after the resume");
    }

    /// <summary>
    /// Trains <paramref name="spec"/> on the cluster to its end (resuming from its checkpoint if asked), then stops it:
    /// each step as its loss, lr, gradient norm, and evaluation (loss, best step, per-group losses and AUCs) in full precision.
    /// </summary>
    async Task<(List<string> Steps, Dictionary<string, TensorPayload> Parameters)> Run(JobSpec spec, bool resume)
    {
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec, resume);
        try
        {
            var steps = new List<string>();
            for (long step = status.StepsDone; step < spec.Steps; step++)
            {
                var m = await coordinator.StepAsync();
                string eval = m.Eval is { } e ? $"{e.Loss:R} best {e.BestStep} [{string.Join(", ", e.Groups.Select(g => $"{g.Loss:R}/{g.Auc:R}"))}]" : "-";
                steps.Add($"{m.Step}: {m.Loss:R} lr {m.LearningRate:R} norm {m.GradientNorm:R} eval {eval}");
            }
            return (steps, await coordinator.GetParametersAsync());
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    static void Near(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-9 * Math.Max(1, Math.Abs(expected)), $"{what}: {actual} vs {expected}");
}
