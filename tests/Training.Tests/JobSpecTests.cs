using Orchestrator.Training;
using static TorchSharp.torch;

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
        { "DType", new JobSpec { DType = ScalarType.Int8 } },
        { "Optimizer.LearningRate", new JobSpec { Optimizer = new OptimizerSpec { LearningRate = double.NaN } } },
        { "Optimizer.Beta1", new JobSpec { Optimizer = new OptimizerSpec { Beta1 = 1.0 } } },
        { "Optimizer.Beta2", new JobSpec { Optimizer = new OptimizerSpec { Beta2 = -0.1 } } },
        { "Optimizer.Eps", new JobSpec { Optimizer = new OptimizerSpec { Eps = 0 } } },
        { "Optimizer.WeightDecay", new JobSpec { Optimizer = new OptimizerSpec { WeightDecay = -1 } } },
        { "Steps", new JobSpec { Steps = -1 } },
        { "Data.Source", new JobSpec { Data = new DataSpec { Source = "csv" } } },
        { "Data.Path", new JobSpec { Data = new DataSpec { Source = "safetensors" } } },
        { "Data.Path", new JobSpec { Data = new DataSpec { Source = "parquet" } } },
        { "Data.Columns.Features", Parquet(new ParquetColumns { Features = [] }) },
        { "Data.Columns.Targets[1]", Parquet(new ParquetColumns { Targets = ["t0", " "] }) },
        { "Data.Columns.Targets", Parquet(new ParquetColumns { Targets = ["t0", "t1", "t0"] }) },
        { "Data.Columns", Parquet(new ParquetColumns { Features = ["x", "y"], Targets = ["y"] }) },
        { "Devices[1]", new JobSpec { Devices = ["cpu", "gpu0"] } },
        { "Devices[0]", new JobSpec { Devices = ["silo/cuda:x"] } },
        { "WorkersPerDevice", new JobSpec { WorkersPerDevice = 0 } },
        { "Transport", new JobSpec { Transport = (TransportChoice)17 } },
        { "Optimizer.Schedule.WarmupSteps", new JobSpec { Optimizer = new OptimizerSpec { Schedule = new ScheduleSpec { WarmupSteps = -1 } } } },
        { "Optimizer.Schedule.DecaySteps", new JobSpec { Optimizer = new OptimizerSpec { Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine, WarmupSteps = 10, DecaySteps = 10 } } } },
        { "Optimizer.Schedule.MinLearningRate", new JobSpec { Optimizer = new OptimizerSpec { LearningRate = 0.1, Schedule = new ScheduleSpec { MinLearningRate = 0.2 } } } },
        { "Optimizer.ClipNorm", new JobSpec { Optimizer = new OptimizerSpec { ClipNorm = -1 } } },
        { "Optimizer.ClipNorm", new JobSpec { Optimizer = new OptimizerSpec { ClipNorm = double.PositiveInfinity } } },
        { "Loss.GroupWeights", new JobSpec { Loss = new LossSpec { GroupWeights = [1, 2] } } },
        { "Loss.GroupWeights", new JobSpec { Loss = new LossSpec { GroupWeights = [1, 2, -1, 1] } } },
        { "Loss.GroupWeights", new JobSpec { Loss = new LossSpec { GroupWeights = [0, 0, 0, 0] } } },
        { "Validation.Fraction", new JobSpec { Validation = new ValidationSpec { Fraction = 1 } } },
        { "Validation.Fraction", new JobSpec { Validation = new ValidationSpec { Fraction = 0.2 } } },   // synthetic data: nothing to hold out
        { "Validation.EverySteps", new JobSpec { Validation = new ValidationSpec { Path = "v.safetensors", EverySteps = -5 } } },
        { "Validation", new JobSpec { Validation = new ValidationSpec { EarlyStopPatience = 3 } } },
    };

    [Fact]
    public void A_schedule_without_decay_steps_decays_over_the_jobs_steps_fixed_at_validation()
    {
        var spec = new JobSpec { Steps = 300, Optimizer = new OptimizerSpec { Schedule = new ScheduleSpec { Kind = ScheduleKind.Cosine } } }.Validate();
        Assert.Equal(300, spec.Optimizer.Schedule.DecaySteps);
        // Resuming with more steps keeps the decay the checkpoint trained with.
        Assert.Equal(300, (spec with { Steps = 900 }).Validate().Optimizer.Schedule.DecaySteps);
        Assert.Equal(0, new JobSpec().Validate().Optimizer.Schedule.DecaySteps);   // constant: nothing to fix
    }

    [Fact]
    public void Loss_kinds_and_schedules_are_written_by_name_and_weights_compare_by_value()
    {
        var spec = new JobSpec
        {
            Loss = new LossSpec { Kind = LossKind.Bce, GroupWeights = [1, 0.5, 2, 1] },
            Optimizer = new OptimizerSpec { Schedule = new ScheduleSpec { Kind = ScheduleKind.Linear, DecaySteps = 50 } },
        };
        string json = spec.ToJson();
        Assert.Contains("\"Bce\"", json);
        Assert.Contains("\"Linear\"", json);
        var back = JobSpec.FromJson(json);
        Assert.Equal(spec.Loss, back.Loss);
        Assert.Null(spec.ModelDifference(back));
        Assert.Equal("Loss", spec.ModelDifference(back with { Loss = back.Loss with { GroupWeights = [1, 0.5, 2, 3] } }));
        Assert.Equal("Validation.Fraction", spec.ModelDifference(back with { Validation = new ValidationSpec { Fraction = 0.1 } }));
    }

    static JobSpec Parquet(ParquetColumns columns) => new() { Data = new DataSpec { Source = "parquet", Path = "x.parquet", Columns = columns } };

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
        new JobSpec { Devices = ["cpu", "cuda:0", "Primary/cuda:12", "host-1/cpu"], DType = ScalarType.BFloat16 }.Validate();
    }

    [Fact]
    public void Parquet_columns_round_trip_through_json_as_the_same_model()
    {
        var spec = Parquet(new ParquetColumns { Features = ["a", "b"], Targets = ["t"] }).Validate();
        var back = JobSpec.FromJson(spec.ToJson());
        Assert.Null(spec.ModelDifference(back));   // the column lists compare by content: a checkpoint's spec resumes
        Assert.Equal("Data", spec.ModelDifference(back with { Data = back.Data with { Columns = back.Data.Columns with { Features = ["b", "a"] } } }));
        Assert.Equal(["features"], JobSpec.FromJson("""{ "data": { "source": "parquet", "path": "x.parquet" } }""").Data.Columns.Features);
    }

    [Theory]
    [InlineData("data/train.parquet", "parquet")]
    [InlineData("DATA.PARQUET", "parquet")]
    [InlineData("data.safetensors", "safetensors")]
    [InlineData("data.parquet.bak", "safetensors")]
    public void A_data_path_picks_its_source_by_extension(string path, string source) => Assert.Equal(source, DataSpec.SourceFor(path));

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

    [Theory]
    [InlineData("bfloat16", ScalarType.BFloat16, "bfloat16")]
    [InlineData("bf16", ScalarType.BFloat16, "bfloat16")]
    [InlineData("BF16", ScalarType.BFloat16, "bfloat16")]
    [InlineData("f16", ScalarType.Float16, "float16")]
    [InlineData("half", ScalarType.Float16, "float16")]
    [InlineData("fp32", ScalarType.Float32, "float32")]
    [InlineData("Float32", ScalarType.Float32, "float32")]
    [InlineData("double", ScalarType.Float64, "float64")]
    [InlineData("f64", ScalarType.Float64, "float64")]
    public void A_spec_file_dtype_is_read_by_any_of_its_names_and_written_by_its_canonical_one(string name, ScalarType dtype, string canonical)
    {
        var spec = JobSpec.FromJson($$"""{ "dtype": "{{name}}" }""").Validate();
        Assert.Equal(dtype, spec.DType);
        Assert.Equal(canonical, (string)System.Text.Json.Nodes.JsonNode.Parse(spec.ToJson())!["dType"]!);
        Assert.Equal(dtype, JobSpec.FromJson(spec.ToJson()).DType);
    }

    [Theory]
    [InlineData("""{ "dtype": "f8" }""", "DType: 'f8' is not a dtype; use one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64).")]
    [InlineData("""{ "dtype": "int8" }""", "DType: 'int8' is not a dtype; use one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64).")]
    [InlineData("""{ "dtype": 6 }""", "DType: a dtype is a name (one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64)), not a JSON Number.")]
    [InlineData("""{ "transport": "tcp" }""", "Transport: 'tcp' is not a transport; use one of auto, message, channel, process, ipc.")]
    [InlineData("""{ "transport": "message,channel" }""", "Transport: 'message,channel' is not a transport; use one of auto, message, channel, process, ipc.")]
    [InlineData("""{ "transport": 1 }""", "Transport: a transport is a name (one of auto, message, channel, process, ipc), not a JSON Number.")]
    public void An_unknown_dtype_or_transport_in_a_spec_file_is_an_error_naming_the_field_and_the_choices(string json, string message)
    {
        var e = Assert.Throws<JobSpecException>(() => JobSpec.FromJson(json));
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("auto", TransportChoice.Auto)]
    [InlineData("message", TransportChoice.Message)]
    [InlineData("Channel", TransportChoice.Channel)]
    [InlineData("PROCESS", TransportChoice.Process)]
    [InlineData("ipc", TransportChoice.Ipc)]
    public void A_spec_file_transport_is_read_case_insensitively_and_written_in_lower_case(string name, TransportChoice transport)
    {
        var spec = JobSpec.FromJson($$"""{ "transport": "{{name}}" }""").Validate();
        Assert.Equal(transport, spec.Transport);
        Assert.Equal(name.ToLowerInvariant(), (string)System.Text.Json.Nodes.JsonNode.Parse(spec.ToJson())!["transport"]!);
    }

    [Fact]
    public void The_default_spec_writes_float32_and_auto()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(new JobSpec().ToJson())!;
        Assert.Equal(("float32", "auto"), ((string)json["dType"]!, (string)json["transport"]!));
    }
}
