using Orchestrator.Training;
using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Jobs that cannot run fail in StartAsync, before any worker trains, with errors that name the problem.</summary>
[Collection(ClusterCollection.Name)]
public class JobRejectionTests(ClusterFixture fixture)
{
    async Task<Exception> StartFails(JobSpec spec)
    {
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.StartAsync(spec));
        Assert.Equal(JobState.NotStarted, (await coordinator.GetStatusAsync()).State);
        Assert.Empty((await coordinator.GetStatusAsync()).Workers);
        return e;
    }

    static JobSpec Job() => DistributedTrainingTests.SmallJob(ScalarType.Float32, []);

    [Fact]
    public async Task An_invalid_spec_names_the_field()
    {
        var e = Assert.IsType<JobSpecException>(await StartFails(Job() with { Shape = new ModelShape { Groups = 0 } }));
        Assert.Equal("Shape.Groups", e.Field);
        Assert.Equal("Shape.Groups: must be > 0; got 0.", e.Message);
    }

    [Fact]
    public async Task A_model_too_large_for_its_devices_is_refused_with_the_numbers_before_anything_is_allocated()
    {
        // 10^8 hidden units: a teacher of ~24 GB per group for the trunk's silo, refused there first.
        var huge = Job() with { Shape = Job().Shape with { Hidden = 100_000_000 } };
        var e = Assert.IsType<JobSpecException>(await StartFails(huge));
        Assert.Equal("Shape", e.Field);
        Assert.Matches(@"trunk and data needs [\d.]+ GiB on \S+/cpu \(parameters and gradients [\d.]+ GiB, AdamW moments [\d.]+ GiB, activations [\d.]+ GiB\), " +
                       @"but [\d.]+ GiB is available there \(", e.Message);

        // From a file there is no teacher: the trunk fits, and each worker refuses its own towers.
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var path = scratch.NewFile();
        var shape = huge.Shape;
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = randn(64, shape.Features),
            [SafetensorsSource.TargetsName] = randn(64, shape.Groups, shape.Output),
        });
        var workers = Assert.IsType<JobSpecException>(await StartFails(huge with { Data = new DataSpec { Source = "safetensors", Path = path } }));
        Assert.Matches(@"\(worker \S+, groups \[\d+, \d+\); \d+ of its groups on this device\) needs [\d.]+ GiB on \S+/cpu", workers.Message);
    }

    [Fact]
    public async Task A_spec_for_another_job_names_the_field()
    {
        var spec = Job();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.GetGrain<ICoordinatorGrain>("other").StartAsync(spec));
        Assert.StartsWith("Name:", e.Message);
    }

    [Fact]
    public async Task Devices_that_match_nothing_are_named()
    {
        var e = Assert.IsType<JobSpecException>(await StartFails(Job() with { Devices = ["cuda:0"] }));
        Assert.Equal("Devices", e.Field);
        Assert.Contains("no device in the cluster matches [cuda:0]; it has [Primary/cpu, Secondary_1/cpu, Secondary_2/cpu]", e.Message);
    }

    [Fact]
    public async Task A_data_file_that_does_not_fit_the_model_is_named()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mismatch-{Guid.NewGuid():N}.safetensors");
        var spec = Job() with { Data = new DataSpec { Source = "safetensors", Path = path } };
        WriteData(path, samples: 10, spec.Shape.Features + 1, spec.Shape.Groups, spec.Shape.Output);
        try
        {
            Assert.Contains($"'features' is (10, {spec.Shape.Features + 1}) but the job needs (S, {spec.Shape.Features})", (await StartFails(spec)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Held_out_targets_a_BCE_job_cannot_take_are_refused_at_start_naming_the_file_and_rows()
    {
        using var scratch = new ScratchDirectory();
        var shape = Job().Shape;
        string train = scratch.NewFile(), validation = scratch.NewFile();
        WriteData(train, samples: 32, shape.Features, shape.Groups, shape.Output, binary: true);
        WriteData(validation, samples: 40, shape.Features, shape.Groups, shape.Output, binary: true, badTargetRow: 37);
        var spec = Job() with
        {
            Data = new DataSpec { Source = "safetensors", Path = train },
            Loss = new LossSpec { Kind = LossKind.Bce },
            Validation = new ValidationSpec { Path = validation, EverySteps = 2 },
        };
        var e = Assert.IsType<InvalidDataException>(await StartFails(spec));
        Assert.Equal($"'{validation}', validation batch 2 (file rows [32, 40)): 1 of its targets are outside [0, 1], {BadBatchException.ProbabilityTargets}.", e.Message);
    }

    /// <summary>Random features and targets (0/1 ones when <paramref name="binary"/>, with a 3 in row <paramref name="badTargetRow"/> if given).</summary>
    static void WriteData(string path, long samples, long features, long groups, long outputs, bool binary = false, long? badTargetRow = null)
    {
        using var scope = NewDisposeScope();
        var check = new Check();
        var targets = check.Randn([samples, groups, outputs], ScalarType.Float32);
        if (binary) targets = targets.gt(0).to(ScalarType.Float32);
        if (badTargetRow is { } row) targets[row, 0, 0] = 3.0f;
        SafeTensors.Write(path, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = check.Randn([samples, features], ScalarType.Float32),
            [SafetensorsSource.TargetsName] = targets,
        });
    }

    [Fact]
    public async Task Slices_too_big_for_an_Orleans_message_are_refused_up_front()
    {
        var spec = Job() with { BatchSize = 4096, DType = ScalarType.Float64, Shape = Job().Shape with { Input = 128 } };   // 4 MiB per group
        var e = Assert.IsType<Transport.TensorPayloadTooLargeException>(await StartFails(spec));
        Assert.Contains("bytes, over the 4,128,768 bytes an Orleans message may carry", e.Message);
    }

    [Fact]
    public async Task Stepping_a_job_that_never_started_is_an_error()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.GetGrain<ICoordinatorGrain>(Job().Name).StepAsync());
        Assert.Contains("is NotStarted", e.Message);
    }
}
