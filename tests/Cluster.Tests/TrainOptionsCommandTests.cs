using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// `orchestrator train` as a process with every training option of issue 13 at once (weighted BCE, a warm-up and
/// cosine schedule, clipping, a held-out fraction evaluated every few steps, early-stopping patience, TensorBoard):
/// the job it runs is the spec those options mean, and it ends where the single-process trainer on that spec ends.
/// </summary>
public sealed class TrainOptionsCommandTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("orchestrator-train-options-test").FullName;
    readonly int seed = Random.Shared.Next(1, 1 << 20);
    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>(S, 6) features and (S, 3, 2) click-like 0/1 targets, fresh random values.</summary>
    string DataFile()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        string path = Path.Combine(root, "clicks.safetensors");
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = randn([80, 6], ScalarType.Float64, generator: generator),
            [SafetensorsSource.TargetsName] = bernoulli(full([80, 3, 2], 0.3, ScalarType.Float64), generator: generator),
        });
        return path;
    }

    [Fact]
    public async Task Every_training_option_reaches_the_job_and_it_trains_as_the_single_process_trainer_does()
    {
        string data = DataFile(), checkpoints = Path.Combine(root, "checkpoints"), logs = Path.Combine(root, "logs");
        const string name = "train-options";
        await using var train = ChildProcess.Start("train", "dotnet",
        [
            Build.ClientDll, "train", "--name", name, "--groups", "3", "--features", "6", "--input", "5", "--hidden", "7",
            "--output", "2", "--batch-size", "12", "--dtype", "float64", "--steps", "8", "--seed", $"{seed}", "--data-seed", "5",
            "--data", "safetensors", "--data-path", data, "--loss", "bce", "--loss-weights", "1,2,0.5",
            "--lr", "0.02", "--lr-schedule", "cosine", "--warmup-steps", "2", "--decay-steps", "6", "--min-lr", "0.001",
            "--clip-norm", "0.05", "--val-fraction", "0.25", "--eval-every", "3", "--early-stop-patience", "4",
            "--checkpoint-dir", checkpoints, "--logdir", logs,
        ]);
        Assert.True(await train.WaitForExitAsync(TimeSpan.FromMinutes(4)), $"train did not exit:\n{train.Output}");
        Assert.True(train.ExitCode == 0, $"exit code {train.ExitCode}:\n{train.Output}");
        Assert.Contains("held-out samples after step 8", train.Output);

        var expected = new JobSpec
        {
            Name = name,
            Shape = new ModelShape { Groups = 3, Features = 6, Input = 5, Hidden = 7, Output = 2 },
            BatchSize = 12,
            DType = ScalarType.Float64,
            Steps = 8,
            Seed = seed,
            Data = new DataSpec { Source = "safetensors", Path = data, DataSeed = 5 },
            Loss = new LossSpec { Kind = LossKind.Bce, GroupWeights = [1, 2, 0.5] },
            Optimizer = new OptimizerSpec
            {
                LearningRate = 0.02,
                Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine, WarmupSteps = 2, DecaySteps = 6, MinLearningRate = 0.001 },
                ClipNorm = 0.05,
            },
            Validation = new ValidationSpec { Fraction = 0.25, EverySteps = 3, EarlyStopPatience = 4 },
        };
        var saved = new CheckpointStore(checkpoints).Open(name, 8);
        var job = saved.Manifest.Job;
        Assert.Null(expected.ModelDifference(job));
        Assert.Equal(LossKind.Bce, job.Loss.Kind);
        Assert.Equal([1, 2, 0.5], job.Loss.GroupWeights);
        Assert.Equal(expected.Optimizer.Schedule, job.Optimizer.Schedule);
        Assert.Equal((0.02, 0.05), (job.Optimizer.LearningRate, job.Optimizer.ClipNorm));
        Assert.Equal(expected.Validation, job.Validation);

        using var reference = new InProcessTrainer(expected);
        var evaluations = new List<EvalMetrics>();
        for (int i = 0; i < expected.Steps; i++)
            if (reference.Step().Eval is { } eval) evaluations.Add(eval);
        Assert.Equal([3L, 6, 8], evaluations.Select(e => e.Step));
        using var parameters = new DisposableDictionary(reference.Parameters());
        using (var trunk = saved.ReadTrunk())
        using (var towers = saved.ReadTowers(new GroupRange(0, 3)))
        {
            // The checkpoint keeps each group's matrices apart: groups.{g}.{gate_up|down}.weight.
            var pairs = new List<(string Name, Tensor Saved, Tensor Reference)>
            {
                (ParameterNames.TrunkWeight, trunk.Tensors[ParameterNames.TrunkWeight], parameters.Values[ParameterNames.TrunkWeight]),
                (ParameterNames.TrunkBias, trunk.Tensors[ParameterNames.TrunkBias], parameters.Values[ParameterNames.TrunkBias]),
            };
            for (int g = 0; g < 3; g++)
            {
                pairs.Add(($"group {g} gate_up", towers.Tensors[StateLayout.Tower(g, StateLayout.GateUp, StateLayout.Weight)], parameters.Values[ParameterNames.TowerGateUp][g]));
                pairs.Add(($"group {g} down", towers.Tensors[StateLayout.Tower(g, StateLayout.Down, StateLayout.Weight)], parameters.Values[ParameterNames.TowerDown][g]));
            }
            foreach (var (parameter, value, expectedValue) in pairs)
            {
                double error = (value - expectedValue).abs().max().item<double>();
                Assert.True(error <= 1e-9, $"{parameter} differs from the single-process trainer's by {error:G3}");
            }
        }

        var scalars = Directory.GetFiles(logs, "events.out.tfevents.*", SearchOption.AllDirectories).SelectMany(EventFileRecords.Values).ToList();
        foreach (var tag in new[] { "train/lr", "train/grad_norm", "val/loss", "val/group1/loss", "val/group1/auc" })
            Assert.Contains(scalars, s => s.Tag == tag);
        Assert.Equal(evaluations[^1].Loss, scalars.Last(s => s.Tag == "val/loss").Scalar!.Value, 1e-5);
    }

    /// <summary>Disposes the tensors of a parameter dictionary.</summary>
    sealed class DisposableDictionary(Dictionary<string, Tensor> values) : IDisposable
    {
        public Dictionary<string, Tensor> Values { get; } = values;
        public void Dispose() { foreach (var t in Values.Values) t.Dispose(); }
    }
}
