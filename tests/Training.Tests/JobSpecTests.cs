using Orchestrator.Training;

namespace Orchestrator.Training.Tests;

public class JobSpecTests
{
    public static TheoryData<string, JobSpec> Invalid => new()
    {
        { "Name", new JobSpec { Name = "has/slash" } },
        { "Name", new JobSpec { Name = "" } },
        // Names the checkpoint store would refuse at the first checkpoint, after training: refused before it.
        { "Name", new JobSpec { Name = ".hidden" } },
        { "Name", new JobSpec { Name = "." } },
        { "Name", new JobSpec { Name = ".." } },
        { "Name", new JobSpec { Name = "a..b" } },
        { "Name", new JobSpec { Name = "trailing-newline\n" } },
        { "Name", new JobSpec { Name = new string('n', 65) } },
        { "Shape.Groups", new JobSpec { Shape = new ModelShape { Groups = 0 } } },
        { "Shape.Features", new JobSpec { Shape = new ModelShape { Features = -3 } } },
        { "Shape.Input", new JobSpec { Shape = new ModelShape { Input = 0 } } },
        { "Shape.Hidden", new JobSpec { Shape = new ModelShape { Hidden = 0 } } },
        { "Shape.Output", new JobSpec { Shape = new ModelShape { Output = 0 } } },
        { "BatchSize", new JobSpec { BatchSize = 0 } },
        { "DType", new JobSpec { DType = "int8" } },
        { "Optimizer.LearningRate", new JobSpec { Optimizer = new OptimizerSpec { LearningRate = double.NaN } } },
        { "Optimizer.Beta1", new JobSpec { Optimizer = new OptimizerSpec { Beta1 = 1.0 } } },
        { "Optimizer.Beta2", new JobSpec { Optimizer = new OptimizerSpec { Beta2 = -0.1 } } },
        { "Optimizer.Eps", new JobSpec { Optimizer = new OptimizerSpec { Eps = 0 } } },
        { "Optimizer.WeightDecay", new JobSpec { Optimizer = new OptimizerSpec { WeightDecay = -1 } } },
        { "Steps", new JobSpec { Steps = -1 } },
        { "Data.Source", new JobSpec { Data = new DataSpec { Source = "parquet" } } },
        { "Data.Path", new JobSpec { Data = new DataSpec { Source = "safetensors" } } },
        { "Devices[1]", new JobSpec { Devices = ["cpu", "gpu0"] } },
        { "Devices[0]", new JobSpec { Devices = ["silo/cuda:x"] } },
        { "WorkersPerDevice", new JobSpec { WorkersPerDevice = 0 } },
        { "Transport", new JobSpec { Transport = "carrier-pigeon" } },
    };

    [Theory, MemberData(nameof(Invalid))]
    public void Invalid_specs_are_rejected_naming_the_field(string field, JobSpec spec)
    {
        var e = Assert.Throws<JobSpecException>(() => spec.Validate());
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ":", e.Message);
    }

    [Fact]
    public void The_default_spec_and_device_forms_are_valid()
    {
        new JobSpec().Validate();
        new JobSpec { Devices = ["cpu", "cuda:0", "Primary/cuda:12", "host-1/cpu"], DType = "bf16" }.Validate();
    }

    [Fact]
    public void Json_round_trips_and_fills_defaults()
    {
        var spec = new JobSpec { Name = "j", Shape = new ModelShape { Groups = 7 }, Devices = ["cpu"], Seed = 42 };
        var back = JobSpec.FromJson(spec.ToJson());
        Assert.Equal(spec.ToJson(), back.ToJson());
        var partial = JobSpec.FromJson("""{ "name": "p", "shape": { "groups": 3 }, "optimizer": { "learningRate": 0.5 } }""");
        Assert.Equal(3, partial.Shape.Groups);
        Assert.Equal(new ModelShape().Hidden, partial.Shape.Hidden);
        Assert.Equal(0.5, partial.Optimizer.LearningRate);
        Assert.Equal(new OptimizerSpec().Beta2, partial.Optimizer.Beta2);
    }

    [Theory]
    [InlineData("""{ "shape": null }""", "Shape")]
    [InlineData("""{ "optimizer": null }""", "Optimizer")]
    [InlineData("""{ "data": null }""", "Data")]
    [InlineData("""{ "data": { "source": null } }""", "Data.Source")]
    [InlineData("""{ "checkpoint": null }""", "Checkpoint")]
    [InlineData("""{ "devices": null }""", "Devices")]
    [InlineData("""{ "devices": ["cpu", null] }""", "Devices[1]")]
    [InlineData("""{ "name": null }""", "Name")]
    [InlineData("""{ "dType": null }""", "DType")]
    [InlineData("""{ "transport": null }""", "Transport")]
    public void A_null_field_in_a_spec_file_is_an_error_naming_it(string json, string field)
    {
        var e = Assert.Throws<JobSpecException>(() => JobSpec.FromJson(json).Validate());
        Assert.Equal(field, e.Field);
        Assert.Contains("is missing (null)", e.Message);
    }

    [Fact]
    public void A_spec_file_naming_a_field_twice_is_an_error()
    {
        var e = Assert.ThrowsAny<System.Text.Json.JsonException>(() => JobSpec.FromJson("""{ "steps": 10, "steps": 20 }"""));
        Assert.Contains("steps", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Json_with_an_unknown_field_is_an_error_naming_it()
    {
        var e = Assert.ThrowsAny<System.Text.Json.JsonException>(() => JobSpec.FromJson("""{ "name": "p", "batchsise": 3 }"""));
        Assert.Contains("batchsise", e.Message);
    }
}
