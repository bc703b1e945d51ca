using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

/// <summary>Small jobs with fresh seeds for the checkpoint tests, and exact comparisons of training state.</summary>
public static class CheckpointJobs
{
    /// <summary>Five groups, so splits into 2 or 3 shards are uneven.</summary>
    public static JobSpec Small(Check check, ScalarType dtype = ScalarType.Float64, string name = "ckpt-job") => new()
    {
        Name = name,
        Shape = new ModelShape { Groups = 5, Features = 7, Input = 3, Hidden = 6, Output = 2 },
        BatchSize = 12,
        DType = dtype,
        Seed = check.Seed,
        Optimizer = new OptimizerSpec { LearningRate = 0.02 },
        Data = new DataSpec { DataSeed = check.Seed + 1L, TeacherSeed = check.Seed + 2L },
    };

    /// <summary>A trainer that has taken <paramref name="steps"/> steps, so its AdamW moments are not zeros.</summary>
    public static InProcessTrainer Trained(JobSpec spec, int steps)
    {
        var trainer = new InProcessTrainer(spec);
        for (int i = 0; i < steps; i++) trainer.Step();
        return trainer;
    }

    /// <summary>Trains <paramref name="steps"/> steps and saves with the towers split over <paramref name="shards"/> files.</summary>
    public static CheckpointManifest SaveAfter(CheckpointStore store, JobSpec spec, int steps, int shards)
    {
        using var scope = NewDisposeScope();
        using var trainer = Trained(spec, steps);
        using var trunk = ShardState.Export(trainer.Trunk);
        using var all = ShardState.Export(trainer.Towers);
        var parts = ShardAssignment.Assign(spec.Shape.Groups, shards).Select(r => Slice(all, r)).ToList();
        try { return store.Save(spec, steps, trunk, parts); }
        finally { parts.ForEach(p => p.Dispose()); }
    }

    /// <summary>Copies the checked-in checkpoints of <paramref name="job"/> (Fixtures/JOB) into the store at <paramref name="root"/>.</summary>
    public static void CopyFixture(string job, string root) =>
        CopyDirectory(Path.Combine(AppContext.BaseDirectory, "Fixtures", job), Path.Combine(root, job));

    static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var directory in Directory.GetDirectories(from)) CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
    }

    /// <summary>Copies of the groups in <paramref name="groups"/> out of a state holding more of them.</summary>
    public static ShardState Slice(ShardState towers, GroupRange groups) => new(groups, towers.OptimizerStep,
        towers.Tensors.Where(kv => InRange(kv.Key, groups)).ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope()));

    static bool InRange(string name, GroupRange groups) => int.Parse(name.Split('.')[1]) is var g && g >= groups.First && g < groups.End;

    /// <summary>Asserts that two tower shards (or a shard and the matching groups of a larger one) hold identical state.</summary>
    public static void AssertSameTowers(TowerShard expected, TowerShard actual)
    {
        using var scope = NewDisposeScope();
        var (first, count) = (actual.Groups.First - expected.Groups.First, actual.Groups.Count);
        Assert.True(Same(expected.WGateUp.narrow(0, first, count), actual.WGateUp), $"w_gate_up of {actual.Groups}");
        Assert.True(Same(expected.WDown.narrow(0, first, count), actual.WDown), $"w_down of {actual.Groups}");
        var (want, got) = (expected.Optimizer!, actual.Optimizer!);
        for (int i = 0; i < 2; i++)
        {
            Assert.True(Same(want.ExpAvg[i].narrow(0, first, count), got.ExpAvg[i]), $"exp_avg {i} of {actual.Groups}");
            Assert.True(Same(want.ExpAvgSq[i].narrow(0, first, count), got.ExpAvgSq[i]), $"exp_avg_sq {i} of {actual.Groups}");
        }
        Assert.Equal(want.StepCount, got.StepCount);
    }

    public static void AssertSameTrunk(Trunk expected, Trunk actual)
    {
        Assert.True(Same(expected.Weight, actual.Weight), "trunk weight");
        Assert.True(Same(expected.Bias, actual.Bias), "trunk bias");
        var (want, got) = (expected.Optimizer!, actual.Optimizer!);
        for (int i = 0; i < 2; i++)
        {
            Assert.True(Same(want.ExpAvg[i], got.ExpAvg[i]), $"trunk exp_avg {i}");
            Assert.True(Same(want.ExpAvgSq[i], got.ExpAvgSq[i]), $"trunk exp_avg_sq {i}");
        }
        Assert.Equal(want.StepCount, got.StepCount);
    }
}
