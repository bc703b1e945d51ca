using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Training.Tests;

public sealed class SafetensorsSourceTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    readonly Check check = new();
    public void Dispose() => scratch.Dispose();

    static readonly ModelShape Shape = new() { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 };

    JobSpec WriteData(long samples, long features = 5, long groups = 3, long outputs = 2, string[]? skip = null)
    {
        using var scope = NewDisposeScope();
        var path = scratch.NewFile();
        var tensors = new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = check.Randn([samples, features], ScalarType.Float32),
            [SafetensorsSource.TargetsName] = check.Randn([samples, groups, outputs], ScalarType.Float32),
        };
        foreach (var name in skip ?? []) tensors.Remove(name);
        SafeTensors.Write(path, tensors);
        return new JobSpec { Shape = Shape, BatchSize = 4, Data = new DataSpec { Source = "safetensors", Path = path, DataSeed = check.Seed } };
    }

    [Fact]
    public void Each_epoch_visits_every_sample_once_in_a_seeded_order()
    {
        using var scope = NewDisposeScope();
        var spec = WriteData(samples: 12);
        using var source = BatchSources.Create(spec);
        using var again = BatchSources.Create(spec);
        var all = SafeTensors.Read(spec.Data.Path!)[SafetensorsSource.FeaturesName];
        var epoch = cat(Enumerable.Range(0, 3).Select(i => source.Get(i).Features).ToArray());   // 3 batches of 4 = 12 samples
        Assert.True(Same(epoch.sort(0).Values, all.sort(0).Values), "an epoch is a permutation of the samples");
        Assert.False(Same(epoch, all), "the order is shuffled");
        Assert.True(Same(source.Get(7).Targets, again.Get(7).Targets), "batch i depends only on (seed, i)");
        Assert.False(Same(source.Get(3).Features, source.Get(0).Features), "epochs are shuffled differently");
    }

    /// <summary>
    /// Epoch e is randperm(S) under the seed of (DataSeed, e, "shuffle"), as it always was: a job resumed from a checkpoint
    /// written before files were cut into blocks (<see cref="ShuffledRows"/>) continues with its own batches.
    /// </summary>
    [Fact]
    public void The_batch_order_is_the_one_older_checkpoints_were_trained_with()
    {
        using var scope = NewDisposeScope();
        var spec = WriteData(samples: 10);
        using var source = BatchSources.Create(spec);
        var all = SafeTensors.Read(spec.Data.Path!)[SafetensorsSource.FeaturesName];
        var rows = Enumerable.Range(0, 2).SelectMany(e =>
            randperm(10, generator: new Generator(GroupInit.StableSeed(spec.Data.DataSeed, e, "shuffle"))).data<long>().ToArray()).ToArray();
        for (int i = 0; i < 5; i++)   // 5 batches of 4: two epochs of 10
            Assert.True(Same(source.Get(i).Features, all.index_select(0, tensor(rows[(i * 4)..(i * 4 + 4)]))), $"batch {i}");
    }

    [Fact]
    public void A_prefetching_source_delivers_the_same_batches_in_order_after_jumps_and_repeats()
    {
        var spec = WriteData(samples: 10);
        using var plain = BatchSources.Create(spec);
        using var prefetching = new PrefetchingBatchSource(BatchSources.Create(spec), CPU);
        foreach (long index in new long[] { 0, 1, 2, 7, 8, 8, 3, 4 })   // in order, a jump ahead, a repeat, a jump back
        {
            using var expected = plain.Get(index);
            using var actual = prefetching.Get(index);
            Assert.True(Same(actual.Features, expected.Features) && Same(actual.Targets, expected.Targets), $"batch {index}");
        }
    }

    [Fact]
    public void A_job_trains_from_a_file()
    {
        var spec = WriteData(samples: 40) with { Steps = 5 };
        using var trainer = new InProcessTrainer(spec);
        for (int i = 0; i < 5; i++) Assert.True(double.IsFinite(trainer.Step().Loss));
    }

    public static TheoryData<string, string> Mismatches => new()
    {
        { "features-width", "'features' is (10, 7) but the job needs (S, 5)" },
        { "groups", "'targets' is (10, 4, 2) but the job needs (S, 3, 2)" },
        { "samples", "'features' has 10 samples but 'targets' has 9" },
        { "missing", "no tensor named 'targets'" },
        { "empty", "holds no samples" },
    };

    [Theory, MemberData(nameof(Mismatches))]
    public void Mismatched_files_are_rejected_before_training(string mismatch, string problem)
    {
        var spec = mismatch switch
        {
            "features-width" => WriteData(10, features: 7),
            "groups" => WriteData(10, groups: 4),
            "samples" => WithTargetsOf(WriteData(10), WriteData(9)),
            "missing" => WriteData(10, skip: [SafetensorsSource.TargetsName]),
            _ => WriteData(0),
        };
        var e = Assert.Throws<InvalidDataException>(() => new InProcessTrainer(spec));
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void A_missing_file_names_the_field()
    {
        var spec = new JobSpec { Data = new DataSpec { Source = "safetensors", Path = scratch.NewFile() } };
        Assert.Equal("Data.Path", Assert.Throws<JobSpecException>(() => BatchSources.Create(spec)).Field);
    }

    /// <summary>The features of one file with the targets of another.</summary>
    static JobSpec WithTargetsOf(JobSpec features, JobSpec targets)
    {
        var a = SafeTensors.Read(features.Data.Path!);
        var b = SafeTensors.Read(targets.Data.Path!);
        SafeTensors.Write(features.Data.Path!, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = a[SafetensorsSource.FeaturesName],
            [SafetensorsSource.TargetsName] = b[SafetensorsSource.TargetsName],
        });
        foreach (var t in a.Values.Concat(b.Values)) t.Dispose();
        return features;
    }

    [Fact]
    public async Task A_data_path_that_is_a_FIFO_is_refused_at_once_instead_of_hanging()
    {
        var fifo = Path.Combine(scratch.Root, "pipe.safetensors");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", fifo)) mkfifo.WaitForExit();
        var spec = new JobSpec { Shape = Shape, BatchSize = 4, Data = new DataSpec { Source = "safetensors", Path = fifo } };
        // Opening a FIFO with no writer blocks forever: the bounded wait turns a regression into a failure, not a hang.
        var refusal = Task.Run(() => Assert.Throws<InvalidDataException>(() => BatchSources.Create(spec)));
        var refused = await refusal.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Contains($"'{fifo}' is not a regular file but a FIFO (named pipe)", refused.Message);
        var device = Assert.Throws<InvalidDataException>(() => SafeTensors.Read("/dev/zero"));
        Assert.Contains("is not a regular file but a character device", device.Message);
    }
}
