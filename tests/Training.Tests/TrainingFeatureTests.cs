using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

/// <summary>
/// Schedules, clipping, the BCE and weighted losses and validation in the single-process trainer, against a reference
/// written here from the formulas: TorchSharp autograd through the plain model, clipping and AdamW by hand, in float64.
/// </summary>
public sealed class TrainingFeatureTests : IDisposable
{
    readonly ScratchDirectory scratch = new();

    public void Dispose() => scratch.Dispose();

    static readonly ModelShape Shape = new() { Groups = 5, Features = 6, Input = 4, Hidden = 8, Output = 3 };

    /// <summary>A data file of <paramref name="samples"/> random features and 0/1 targets (or normal ones for MSE); feature 0 of row r is r / 100.</summary>
    string DataFile(Check check, long samples, bool binary)
    {
        using var scope = NewDisposeScope();
        var features = check.Randn([samples, Shape.Features], ScalarType.Float64);
        features.select(1, 0).copy_(arange(samples, ScalarType.Float64).mul_(0.01));   // marks each row (r / 100), to see which rows a batch took
        var targets = check.Randn([samples, Shape.Groups, Shape.Output], ScalarType.Float64);
        if (binary) targets = targets.gt(0).to(ScalarType.Float64);
        string path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = targets });
        return path;
    }

    JobSpec Job(Check check, string data, LossKind loss = LossKind.Mse) => new()
    {
        Name = "features",
        Shape = Shape,
        BatchSize = 16,
        DType = ScalarType.Float64,
        Steps = 12,
        Seed = check.Seed,
        Data = new DataSpec { Source = "safetensors", Path = data, DataSeed = check.Seed + 1L },
        Loss = new LossSpec { Kind = loss },
    };

    [Fact]
    public void The_schedule_warms_up_then_decays_to_its_floor()
    {
        var cosine = new OptimizerSpec { LearningRate = 0.1, Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine, WarmupSteps = 4, DecaySteps = 14, MinLearningRate = 0.02 } };
        Assert.Equal(0.025, LearningRateSchedule.At(cosine, 1), 15);
        Assert.Equal(0.1, LearningRateSchedule.At(cosine, 4), 15);
        Assert.Equal(0.06, LearningRateSchedule.At(cosine, 9), 15);               // halfway through the decay: the mean of lr and floor
        Assert.Equal(0.02 + 0.08 * (1 + Math.Cos(Math.PI * 0.2)) / 2, LearningRateSchedule.At(cosine, 6), 15);
        Assert.Equal(0.02, LearningRateSchedule.At(cosine, 14), 15);
        Assert.Equal(0.02, LearningRateSchedule.At(cosine, 1000), 15);
        var linear = cosine with { Schedule = cosine.Schedule with { Kind = ScheduleKind.Linear } };
        Assert.Equal(0.1 - 0.08 * 0.3, LearningRateSchedule.At(linear, 7), 15);
        var constant = new OptimizerSpec { LearningRate = 0.3, Schedule = new ScheduleSpec { WarmupSteps = 3 } };
        Assert.Equal([0.1, 0.2, 0.3, 0.3], Enumerable.Range(1, 4).Select(t => Math.Round(LearningRateSchedule.At(constant, t), 15)));
    }

    /// <summary>
    /// Twelve steps of a clipped, cosine-scheduled job with weighted BCE equal a reference that knows nothing of our
    /// kernels: autograd through the plain model, torch's clip_grad_norm_ rule and AdamW written out.
    /// </summary>
    [Fact]
    public void A_clipped_scheduled_weighted_BCE_run_matches_autograd_with_clipping_and_AdamW_written_out()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        double[] weights = [1, 0.5, 2, 0, 1.5];
        var spec = Job(check, DataFile(check, 200, binary: true), LossKind.Bce) with
        {
            Optimizer = new OptimizerSpec
            {
                LearningRate = 0.05, WeightDecay = 0.02, ClipNorm = 1e-3,   // below every step's norm: each is clipped
                Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine, WarmupSteps = 3, DecaySteps = 10, MinLearningRate = 0.001 },
            },
            Loss = new LossSpec { Kind = LossKind.Bce, GroupWeights = weights },
        };
        using var trainer = new InProcessTrainer(spec);
        var initial = trainer.Parameters();
        var p = new[] { ParameterNames.TrunkWeight, ParameterNames.TrunkBias, ParameterNames.TowerGateUp, ParameterNames.TowerDown }
            .Select(name => initial[name].clone().requires_grad_(true)).ToArray();
        var m = p.Select(t => zeros_like(t)).ToArray();
        var v = p.Select(t => zeros_like(t)).ToArray();
        var w = tensor(weights).view(1, -1, 1);
        using var batches = BatchSources.Create(spec);
        int clipped = 0;
        for (int step = 0; step < spec.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var metrics = trainer.Step();
            using var batch = batches.Get(step);
            var x = nn.functional.silu(batch.Features.matmul(p[0]) + p[1]).view(16, Shape.Groups, Shape.Input);
            var groups = Enumerable.Range(0, Shape.Groups).Select(g =>
            {
                var gateUp = x.select(1, g).matmul(p[2][g]);
                var hidden = nn.functional.silu(gateUp.narrow(1, 0, Shape.Hidden)) * gateUp.narrow(1, Shape.Hidden, Shape.Hidden);
                return hidden.matmul(p[3][g]);
            }).ToArray();
            var y = stack(groups, 1);
            var perElement = nn.functional.binary_cross_entropy_with_logits(y, batch.Targets, reduction: nn.Reduction.None);
            var loss = (perElement.mean([0, 2]) * w.flatten()).mean();
            foreach (var t in p) t.grad?.zero_();
            loss.backward();
            Assert.True(Math.Abs(loss.item<double>() - metrics.Loss) <= 1e-12 * Math.Abs(metrics.Loss), $"step {step}: loss {metrics.Loss} vs {loss.item<double>()}");

            double norm = Math.Sqrt(p.Sum(t => t.grad!.square().sum().item<double>()));
            Assert.True(Math.Abs(norm - metrics.GradientNorm!.Value) <= 1e-10 * norm, $"step {step}: gradient norm {metrics.GradientNorm} vs {norm}");
            double scale = Math.Min(1, spec.Optimizer.ClipNorm / (norm + 1e-6));
            if (scale < 1) clipped++;
            long t1 = step + 1;
            double lr = LearningRateSchedule.At(spec.Optimizer, t1);
            Assert.Equal(lr, metrics.LearningRate);
            using (no_grad())
                for (int i = 0; i < p.Length; i++)
                {
                    var g = p[i].grad! * scale;
                    p[i].mul_(1 - lr * spec.Optimizer.WeightDecay);
                    m[i].mul_(0.9).add_(g, alpha: 0.1);
                    v[i].mul_(0.999).addcmul_(g, g, value: 0.001);
                    var denom = (v[i] / (1 - Math.Pow(0.999, t1))).sqrt() + spec.Optimizer.Eps;
                    p[i].sub_(m[i] / denom * (lr / (1 - Math.Pow(0.9, t1))));
                }
        }
        Assert.True(clipped == spec.Steps, $"only {clipped} of {spec.Steps} steps were clipped (seed {check.Seed})");
        var final = trainer.Parameters();
        check.Close(final[ParameterNames.TrunkWeight], p[0], 1e-10, "trunk weight");
        check.Close(final[ParameterNames.TrunkBias], p[1], 1e-10, "trunk bias");
        check.Close(final[ParameterNames.TowerGateUp], p[2], 1e-10, "gate/up");
        check.Close(final[ParameterNames.TowerDown], p[3], 1e-10, "down");
    }

    [Fact]
    public void BCE_is_finite_for_huge_logits_and_weighted_MSE_with_unit_weights_is_plain_MSE()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var y = check.Randn([8, 5, 3], ScalarType.Float64, scale: 1000);
        var t = check.Randn([8, 5, 3], ScalarType.Float64).gt(0).to(ScalarType.Float64);
        using var bce = new JobLoss(new LossSpec { Kind = LossKind.Bce });
        var (loss, dY) = bce.Queue(y, t);
        var expected = nn.functional.binary_cross_entropy_with_logits(y, t);
        Assert.True(double.IsFinite(loss.item<double>()));
        Assert.Equal(expected.item<double>(), loss.item<double>(), 1e-9);
        check.Close(dY, (sigmoid(y) - t) / y.numel(), 1e-12, "dY of BCE");

        using var plain = new JobLoss(new LossSpec());
        using var unit = new JobLoss(new LossSpec { GroupWeights = [1, 1, 1, 1, 1] });
        var target = check.Randn([8, 5, 3], ScalarType.Float64);
        var yy = check.Randn([8, 5, 3], ScalarType.Float64);
        var (a, da) = plain.Queue(yy, target);
        var (b, db) = unit.Queue(yy, target);
        Assert.Equal(a.item<double>(), b.item<double>(), 1e-14);
        check.Close(db, da, 1e-14, "dY of weighted MSE");
    }

    [Fact]
    public void A_BCE_batch_with_a_target_outside_0_1_is_rejected_by_number_and_changes_nothing()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        string path = DataFile(check, 32, binary: true);
        var tensors = SafeTensors.Read(path);
        tensors[SafetensorsSource.TargetsName][7, 2, 1] = tensor(1.5, ScalarType.Float64);   // every batch of 16 of 32 rows meets row 7 within two
        SafeTensors.Write(path, tensors);
        using var trainer = new InProcessTrainer(Job(check, path, LossKind.Bce));
        var before = trainer.Parameters();
        // Batches 0 and 1 are the first epoch's permutation of the 32 rows: one of them holds row 7.
        if (RowsOf(trainer, batch: 0).Contains(7) is false)
        {
            trainer.Step();
            before = trainer.Parameters();
        }
        long bad = trainer.StepCount;
        var error = Assert.Throws<BadBatchException>(() => trainer.Step());
        Assert.Contains($"batch {bad} is rejected: 1 of its targets are outside [0, 1]", error.Message);
        var after = trainer.Parameters();
        foreach (var name in before.Keys) Assert.True(Same(before[name], after[name]), name);
    }

    /// <summary>The rows batch <paramref name="batch"/> takes, read from the feature marking them.</summary>
    static long[] RowsOf(InProcessTrainer trainer, long batch)
    {
        using var scope = NewDisposeScope();
        using var source = BatchSources.Create(trainer.Spec);
        using var taken = source.Get(batch);
        return taken.Features.select(1, 0).mul(100).round().to(ScalarType.Int64).data<long>().ToArray();
    }

    [Fact]
    public void AUC_equals_the_pair_count_with_ties_as_halves()
    {
        var random = new Random(new Check().Seed);
        for (int trial = 0; trial < 50; trial++)
        {
            int n = random.Next(2, 60);
            var scores = Enumerable.Range(0, n).Select(_ => Math.Round(random.NextDouble() * 4) / 4).ToArray();   // few values: many ties
            var labels = Enumerable.Range(0, n).Select(_ => random.Next(2) * 1.0).ToArray();
            labels[0] = 0; labels[1] = 1;
            double wins = 0, pairs = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (labels[i] == 1 && labels[j] == 0)
                    {
                        pairs++;
                        wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                    }
            Assert.Equal(wins / pairs, RocAuc.Compute(scores, labels)!.Value, 12);
        }
        Assert.Null(RocAuc.Compute([0.1, 0.2], [1, 1]));       // one class only
        Assert.Null(RocAuc.Compute([0.1, 0.2], [0, 0.5]));     // not a label
        Assert.Equal(1.0, RocAuc.Compute([0.1, 0.9], [0, 1]));
    }

    /// <summary>
    /// The last quarter of the file is never trained on, and each evaluation equals the loss computed by hand with the
    /// trainer's parameters of that step over exactly those rows.
    /// </summary>
    [Fact]
    public void Held_out_rows_are_never_trained_on_and_the_evaluation_is_their_loss()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var spec = Job(check, DataFile(check, 50, binary: false)) with
        {
            Steps = 10,
            Validation = new ValidationSpec { Fraction = 0.25, EverySteps = 4 },
            Loss = new LossSpec { GroupWeights = [2, 1, 0.5, 1, 3] },
        };
        using var trainer = new InProcessTrainer(spec);
        using (var batches = BatchSources.Create(spec))
            for (int i = 0; i < 40; i++)
            {
                using var batch = batches.Get(i);
                Assert.True(batch.Features.select(1, 0).max().item<double>() < 0.365, $"batch {i} took a held-out row");   // 50 - floor(50 * 0.75) = 13 held out
            }
        var evaluated = new List<long>();
        for (int step = 0; step < spec.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var metrics = trainer.Step();
            if (metrics.Eval is not { } eval) continue;
            evaluated.Add(eval.Step);
            Assert.Equal(13, eval.Samples);
            var expected = HeldOutLoss(trainer, spec, path: spec.Data.Path!, first: 37, count: 13);
            Assert.True(Math.Abs(expected.Total - eval.Loss) <= 1e-12 * expected.Total, $"step {eval.Step}: {eval.Loss} vs {expected.Total}");
            for (int g = 0; g < Shape.Groups; g++)
                Assert.True(Math.Abs(expected.Groups[g] - eval.Groups[g].Loss) <= 1e-12 * expected.Groups[g], $"group {g}: {eval.Groups[g].Loss} vs {expected.Groups[g]}");
        }
        Assert.Equal([4L, 8, 10], evaluated);
    }

    /// <summary>The model's MSE on rows [first, first + count), from its parameters with plain ops, per group and weighted.</summary>
    static (double Total, double[] Groups) HeldOutLoss(InProcessTrainer trainer, JobSpec spec, string path, long first, long count)
    {
        using var scope = NewDisposeScope();
        var data = SafeTensors.Read(path);
        var features = data[SafetensorsSource.FeaturesName].narrow(0, first, count);
        var targets = data[SafetensorsSource.TargetsName].narrow(0, first, count);
        var p = trainer.Parameters();
        var x = nn.functional.silu(features.matmul(p[ParameterNames.TrunkWeight]) + p[ParameterNames.TrunkBias]).view(count, Shape.Groups, Shape.Input);
        var groups = Enumerable.Range(0, Shape.Groups).Select(g =>
        {
            var gateUp = x.select(1, g).matmul(p[ParameterNames.TowerGateUp][g]);
            var hidden = nn.functional.silu(gateUp.narrow(1, 0, Shape.Hidden)) * gateUp.narrow(1, Shape.Hidden, Shape.Hidden);
            var y = hidden.matmul(p[ParameterNames.TowerDown][g]);
            return (y - targets.select(1, g)).square().mean().item<double>();
        }).ToArray();
        return (groups.Select((l, g) => l * spec.Loss.GroupWeights[g]).Sum() / Shape.Groups, groups);
    }

    /// <summary>A copy of the data file at <paramref name="path"/> with one value of <paramref name="tensor"/> at <paramref name="index"/> replaced.</summary>
    string WithValue(string path, string tensor, long[] index, double value)
    {
        using var scope = NewDisposeScope();
        var data = SafeTensors.Read(path);
        data[tensor][index.Select(i => TensorIndex.Single(i)).ToArray()] = value;
        string copy = scratch.NewFile();
        SafeTensors.Write(copy, data);
        return copy;
    }

    [Fact]
    public void Held_out_data_with_values_the_loss_cannot_take_is_refused_when_the_job_starts_naming_the_file_and_rows()
    {
        var check = new Check();
        string data = DataFile(check, 64, binary: true), validation = DataFile(check, 40, binary: true);
        var bce = Job(check, data, LossKind.Bce);
        InvalidDataException Refused(JobSpec spec) => Assert.Throws<InvalidDataException>(() => new InProcessTrainer(spec));

        // Batches of 16: row 21 of the validation file is in its second run of rows.
        string label = WithValue(validation, SafetensorsSource.TargetsName, [21, 3, 1], 2.0);
        var e = Refused(bce with { Validation = new ValidationSpec { Path = label } });
        Assert.Equal($"'{label}', validation batch 1 (file rows [16, 32)): 1 of its targets are outside [0, 1], {BadBatchException.ProbabilityTargets}.", e.Message);
        using (var mse = new InProcessTrainer(Job(check, data) with { Validation = new ValidationSpec { Path = label } }))
            Assert.True(double.IsFinite(mse.Evaluate().Loss), "an MSE job takes any finite target");

        string feature = WithValue(validation, SafetensorsSource.FeaturesName, [39, 2], double.NaN);
        e = Refused(bce with { Validation = new ValidationSpec { Path = feature } });
        Assert.Equal($"'{feature}', validation batch 2 (file rows [32, 40)): its features hold 1 NaN or infinite values; validation needs finite data.", e.Message);

        // The held-out fraction is the file's last 16 rows, [48, 64): an infinite target there is refused, one in the rows trained on is left to the step's check.
        string held = WithValue(data, SafetensorsSource.TargetsName, [50, 0, 0], double.PositiveInfinity);
        e = Refused(Job(check, held) with { Validation = new ValidationSpec { Fraction = 0.25 } });
        Assert.Equal($"the held-out fraction of '{held}', validation batch 0 (file rows [48, 64)): its targets hold 1 NaN or infinite values; validation needs finite data.", e.Message);
        string trained = WithValue(data, SafetensorsSource.TargetsName, [10, 0, 0], double.PositiveInfinity);
        using (var starts = new InProcessTrainer(Job(check, trained) with { Validation = new ValidationSpec { Fraction = 0.25 } }))
            Assert.True(double.IsFinite(starts.Evaluate().Loss), "the held-out rows are finite");
    }

    [Fact]
    public void Early_stopping_counts_evaluations_without_a_better_loss()
    {
        var judge = new EarlyStopping(patience: 2, restored: null);
        EvalMetrics At(long step, double loss) => judge.Judge(new EvalMetrics(step, 10, loss, []));
        Assert.True(At(10, 0.5).Best);
        Assert.Equal(1, At(20, 0.6).SinceBest);
        var better = At(30, 0.4);
        Assert.True(better is { Best: true, SinceBest: 0, StopsEarly: false });
        Assert.False(At(40, double.NaN).Best);   // a NaN loss is never the best
        var stop = At(50, 0.4);                  // equal is not better
        Assert.True(stop is { StopsEarly: true, SinceBest: 2, BestStep: 30, BestLoss: 0.4 });
        var resumed = new EarlyStopping(2, new ValidationRecord(30, 0.4, 1));
        Assert.True(resumed.Judge(new EvalMetrics(60, 10, 0.45, [])).StopsEarly);
    }

    /// <summary>
    /// Fixed data, no random draw: the held-out targets are the negated training targets on the same features, so fitting
    /// the training data worsens the validation loss and the first evaluation stays the best.
    /// </summary>
    [Fact]
    public void An_older_best_checkpoint_survives_pruning_to_one_and_still_verifies()
    {
        using var scope = NewDisposeScope();
        long samples = 32;
        var features = arange(samples * Shape.Features, ScalarType.Float64).view(samples, Shape.Features).mul_(0.37).sin_();
        var targets = arange(samples * Shape.Groups * Shape.Output, ScalarType.Float64).view(samples, Shape.Groups, Shape.Output).cos_().mul_(0.5).add_(1);
        string train = scratch.NewFile(), held = scratch.NewFile();
        SafeTensors.Write(train, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = targets });
        SafeTensors.Write(held, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = -targets });
        var spec = new JobSpec
        {
            Name = "older-best",
            Shape = Shape,
            BatchSize = 8,
            DType = ScalarType.Float64,
            Steps = 6,
            Seed = 5,
            Data = new DataSpec { Source = "safetensors", Path = train, DataSeed = 6 },
            Optimizer = new OptimizerSpec { LearningRate = 0.05 },
            Validation = new ValidationSpec { Path = held, EverySteps = 1 },
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, Keep = 1 },
        };
        var store = new CheckpointStore(scratch.Root);
        using var trainer = new InProcessTrainer(spec);
        var losses = new List<double>();
        for (int step = 0; step < spec.Steps; step++)
        {
            var eval = trainer.Step().Eval!;
            losses.Add(eval.Loss);
            trainer.SaveCheckpoint(store);
            if (eval.Best) store.MarkBest(spec.Name, trainer.StepCount);
            store.Prune(spec.Name, spec.Checkpoint.Keep);
        }
        Assert.True(losses.Skip(1).All(loss => loss > losses[0]), $"every later validation loss should exceed the first: {string.Join(", ", losses)}");
        Assert.Equal(1, store.BestStep(spec.Name));
        Assert.Equal([1L, 6], store.List(spec.Name));
        var best = store.Open(spec.Name, 1);
        best.Verify();
        Assert.Equal(new ValidationRecord(1, losses[0], 0), best.Manifest.Validation);
        Assert.Equal(new ValidationRecord(1, losses[0], 5), store.Open(spec.Name).Manifest.Validation);
    }

    [Fact]
    public void The_best_checkpoint_survives_pruning_and_a_resume_continues_schedule_clipping_and_early_stopping_exactly()
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        string data = DataFile(check, 64, binary: true);
        var spec = Job(check, data, LossKind.Bce) with
        {
            Steps = 12,
            Optimizer = new OptimizerSpec
            {
                LearningRate = 0.05, ClipNorm = 0.5,
                Schedule = new ScheduleSpec { Kind = ScheduleKind.Linear, WarmupSteps = 2, MinLearningRate = 0.005 },
            },
            Validation = new ValidationSpec { Path = DataFile(check, 20, binary: true), EverySteps = 2, EarlyStopPatience = 100 },
        };
        var store = new CheckpointStore(scratch.Root);
        using var whole = new InProcessTrainer(spec);
        var reference = Enumerable.Range(0, spec.Steps).Select(_ => whole.Step()).ToArray();

        using (var first = new InProcessTrainer(spec))
        {
            long? best = null;
            for (int i = 0; i < 6; i++)
            {
                var metrics = first.Step();
                first.SaveCheckpoint(store);
                if (metrics.Eval is { Best: true })
                {
                    best = first.StepCount;
                    store.MarkBest(spec.Name, first.StepCount);
                }
            }
            store.Prune(spec.Name, keep: 1);
            Assert.Equal(best, store.BestStep(spec.Name));
            Assert.Contains(best!.Value, store.List(spec.Name));
        }
        using var resumed = InProcessTrainer.Resume(store, spec.Name);
        Assert.Equal(whole.EarlyStopping.State is null ? null : reference[5].Eval!.BestStep, resumed.EarlyStopping.State?.BestStep);
        for (int step = 6; step < spec.Steps; step++)
        {
            var metrics = resumed.Step();
            Assert.Equal(reference[step].Loss, metrics.Loss);
            Assert.Equal(reference[step].LearningRate, metrics.LearningRate);
            Assert.Equal(reference[step].GradientNorm, metrics.GradientNorm);
            Assert.Equal(reference[step].Eval?.Loss, metrics.Eval?.Loss);
            Assert.Equal(reference[step].Eval?.SinceBest, metrics.Eval?.SinceBest);
            Assert.Equal(reference[step].Eval?.Groups.Select(g => g.Auc), metrics.Eval?.Groups.Select(g => g.Auc));
        }
        var (a, b) = (whole.Parameters(), resumed.Parameters());
        foreach (var name in a.Keys) Assert.True(Same(a[name], b[name]), $"{name} differs after the resume");
    }
}
