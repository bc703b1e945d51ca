using Orchestrator.Client.Commands;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// `train --resume` with only --checkpoint-dir, --name and --steps: the model settings come from the checkpoint's
/// manifest, and the resumed job ends bit for bit where a run that was never interrupted does; a model option that
/// differs from the checkpoint's is refused, named, before anything trains.
/// </summary>
public class TrainResumeTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("orchestrator-resume-test").FullName;
    readonly string name = $"resume-{Guid.NewGuid():N}";

    /// <summary>Not the defaults, every one of them: a resume that fell back to a default would train another model.</summary>
    static readonly string[] Model =
    [
        "--groups", "3", "--features", "6", "--input", "5", "--hidden", "7", "--output", "4", "--batch-size", "24",
        "--dtype", "float64", "--lr", "0.003", "--beta1", "0.8", "--weight-decay", "0.05", "--seed", "11", "--data-seed", "9", "--teacher-seed", "4",
    ];

    public void Dispose() => Directory.Delete(root, recursive: true);

    static async Task<string> Train(int expectedCode, params string[] arguments)
    {
        await using var train = ChildProcess.Start("train", "dotnet", [Build.ClientDll, "train", .. arguments]);
        Assert.True(await train.WaitForExitAsync(TimeSpan.FromMinutes(4)), $"train did not exit:\n{train.Output}");
        Assert.True(train.ExitCode == expectedCode, $"exit code {train.ExitCode}, not {expectedCode}:\n{train.Output}");
        return train.Output;
    }

    [Fact]
    public async Task Resuming_with_only_the_directory_name_and_steps_equals_an_uninterrupted_run_and_a_conflicting_option_is_named()
    {
        string interrupted = Path.Combine(root, "interrupted"), straight = Path.Combine(root, "straight");
        await Train(0, [.. Model, "--checkpoint-dir", interrupted, "--name", name, "--steps", "5"]);
        var output = await Train(0, "--checkpoint-dir", interrupted, "--name", name, "--resume", "--steps", "11");
        Assert.Contains("resumed from the checkpoint at step 5", output);
        await Train(0, [.. Model, "--checkpoint-dir", straight, "--name", name, "--steps", "11"]);

        var resumed = new CheckpointStore(interrupted).Open(name, 11);
        var uninterrupted = new CheckpointStore(straight).Open(name, 11);
        Assert.Null(uninterrupted.Manifest.Job.ModelDifference(resumed.Manifest.Job));
        Assert.Equal(ScalarType.Float64, resumed.Manifest.DType);
        using (var a = resumed.ReadTrunk())
        using (var b = uninterrupted.ReadTrunk())
            AssertSame(a, b);
        using (var a = resumed.ReadTowers(new GroupRange(0, 3)))
        using (var b = uninterrupted.ReadTowers(new GroupRange(0, 3)))
            AssertSame(a, b);

        // Spectre reports a settings error with -1: status 255.
        output = await Train(255, "--checkpoint-dir", interrupted, "--name", name, "--resume", "--steps", "20", "--hidden", "9");
        Assert.Contains("--hidden 9 conflicts with the checkpoint", output);
        Assert.Contains("which has --hidden 7", output);
        Assert.Equal(11, new CheckpointStore(interrupted).LatestStep(name));
    }

    [Fact]
    public void A_spec_file_overrides_the_checkpoint_field_by_field_and_a_model_field_it_changes_is_named()
    {
        var saved = new JobSpec
        {
            Name = name,
            Shape = new ModelShape { Groups = 2, Features = 3, Input = 4, Hidden = 5, Output = 6 },
            Optimizer = new OptimizerSpec { LearningRate = 0.02 },
            Seed = 3,
            Checkpoint = new CheckpointSpec { Directory = root },
        };
        WriteCheckpoint(saved, step: 4);
        string file = Path.Combine(root, "spec.json");
        File.WriteAllText(file, """{ "Steps": 30, "devices": ["cpu"], "checkpoint": { "keep": 5 } }""");
        var spec = new TrainSettings { CheckpointDir = root, Name = name, Resume = true, SpecFile = file, LeaseSeconds = 9 }.Spec;
        Assert.Null(saved.ModelDifference(spec));
        Assert.Equal((30, "cpu", 5, root, 9), (spec.Steps, spec.Devices.Single(), spec.Checkpoint.Keep, spec.Checkpoint.Directory, spec.LeaseSeconds));

        File.WriteAllText(file, """{ "shape": { "hidden": 8 } }""");
        var conflict = new TrainSettings { CheckpointDir = root, Name = name, Resume = true, SpecFile = file }.Validate();
        Assert.False(conflict.Successful);
        Assert.Contains("--hidden 8 conflicts with the checkpoint", conflict.Message);
        var seed = new TrainSettings { CheckpointDir = root, Name = name, Resume = true, Seed = 4 }.Validate();
        Assert.Contains("--seed 4 conflicts with the checkpoint", seed.Message);
        Assert.Contains("which has --seed 3", seed.Message);
    }

    [Fact]
    public void A_Parquet_column_list_that_conflicts_with_the_checkpoint_is_named()
    {
        var saved = new JobSpec
        {
            Name = name,
            Shape = new ModelShape { Groups = 2, Features = 3, Input = 4, Hidden = 5, Output = 1 },
            Data = new DataSpec
            {
                Source = "parquet", Path = Path.Combine(root, "train.parquet"),
                Columns = new ParquetColumns { Features = ["a", "b", "c"], Targets = ["click", "buy"] },
            },
            Checkpoint = new CheckpointSpec { Directory = root },
        };
        WriteCheckpoint(saved, step: 2);
        Assert.True(new TrainSettings { CheckpointDir = root, Name = name, Resume = true, FeatureColumns = "a,b,c", TargetColumns = "click,buy" }.Validate().Successful,
            "the checkpoint's own columns are no conflict");
        var features = new TrainSettings { CheckpointDir = root, Name = name, Resume = true, FeatureColumns = "a,c,b" }.Validate();
        Assert.False(features.Successful);
        Assert.Contains("--feature-columns a,c,b conflicts with the checkpoint", features.Message);
        Assert.Contains("which has --feature-columns a,b,c", features.Message);
        var targets = new TrainSettings { CheckpointDir = root, Name = name, Resume = true, TargetColumns = "buy" }.Validate();
        Assert.Contains("--target-columns buy conflicts with the checkpoint", targets.Message);
        Assert.Contains("which has --target-columns click,buy", targets.Message);
    }

    /// <summary>A checkpoint of <paramref name="job"/> with fresh random float32 parameters of its shapes.</summary>
    static void WriteCheckpoint(JobSpec job, long step)
    {
        using var trunk = new Trunk(job.Shape, job.Seed, ScalarType.Float32, CPU, job.Optimizer);
        using var towers = new TowerShard(job.Shape, new GroupRange(0, job.Shape.Groups), job.Seed, ScalarType.Float32, CPU, job.Optimizer);
        using var trunkState = ShardState.Export(trunk);
        using var towerState = ShardState.Export(towers);
        new CheckpointStore(job.Checkpoint.Directory!).Save(job, step, trunkState, [towerState]);
    }

    static void AssertSame(ShardState a, ShardState b)
    {
        Assert.Equal(a.OptimizerStep, b.OptimizerStep);
        Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
        foreach (var (key, tensor) in a.Tensors)
        {
            Assert.Equal(ScalarType.Float64, tensor.dtype);
            Assert.Equal(tensor.shape, b.Tensors[key].shape);
            Assert.True(tensor.eq(b.Tensors[key]).all().item<bool>(), $"{key} differs between the resumed and the uninterrupted run");
        }
    }
}
