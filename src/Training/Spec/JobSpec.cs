using System.Text.Json;
using System.Text.Json.Serialization;
using ScalarType = TorchSharp.torch.ScalarType;

namespace Orchestrator.Training;

/// <summary>Sizes of the model: N groups, D_feat trunk features, and each tower D_in -> H -> D_out.</summary>
public sealed record ModelShape
{
    public int Groups { get; init; } = 4;     // N
    public int Features { get; init; } = 32;  // D_feat
    public int Input { get; init; } = 32;     // D_in
    public int Hidden { get; init; } = 64;    // H
    public int Output { get; init; } = 16;    // D_out
}

/// <summary>AdamW settings, shared by every parameter of the job.</summary>
public sealed record OptimizerSpec
{
    public double LearningRate { get; init; } = 1e-2;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>How the learning rate changes over the optimizer's steps (<see cref="LearningRateSchedule"/>).</summary>
    public ScheduleSpec Schedule { get; init; } = new();
    /// <summary>
    /// Clip the gradients by their global L2 norm over every parameter of the job (trunk and all shards) to at most this
    /// (0: no clipping), as torch.nn.utils.clip_grad_norm_ does: every gradient is scaled by min(1, ClipNorm / (norm + 1e-6)).
    /// </summary>
    public double ClipNorm { get; init; }
}

/// <summary>The shape of the learning-rate schedule: constant, or after a linear warm-up a cosine or linear decay.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ScheduleKind>))]
public enum ScheduleKind { Constant, Cosine, Linear }

/// <summary>
/// The learning rate of optimizer step t (1, 2, ...): it rises linearly over WarmupSteps to OptimizerSpec.LearningRate,
/// then (cosine, linear) falls to MinLearningRate at step DecaySteps and stays there. DecaySteps 0 means the job's Steps,
/// fixed when the job starts (<see cref="JobSpec.Validate"/>), so a resumed job with more steps keeps its schedule.
/// </summary>
public sealed record ScheduleSpec
{
    public ScheduleKind Kind { get; init; } = ScheduleKind.Constant;
    public int WarmupSteps { get; init; }
    public int DecaySteps { get; init; }
    public double MinLearningRate { get; init; }
}

/// <summary>The training loss.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LossKind>))]
public enum LossKind
{
    /// <summary>Mean squared error.</summary>
    Mse,
    /// <summary>Binary cross-entropy on logits (targets in [0, 1]), in the numerically stable form.</summary>
    Bce,
}

/// <summary>
/// The loss: loss = (1/N) sum_g w_g L_g, where L_g is the mean of group g's per-element loss over (B, D_out) and w_g
/// its weight (GroupWeights, N of them; empty: all 1, which makes the loss the mean over every element).
/// </summary>
public sealed record LossSpec
{
    public LossKind Kind { get; init; } = LossKind.Mse;
    public IReadOnlyList<double> GroupWeights { get; init; } = [];

    public bool Equals(LossSpec? other) => other is not null && Kind == other.Kind && GroupWeights.SequenceEqual(other.GroupWeights);

    public override int GetHashCode() => HashCode.Combine(Kind, GroupWeights.Count);
}

/// <summary>
/// Held-out data the job is evaluated on: the last Fraction of the data file's samples (never trained on; as Keras'
/// validation_split takes them), or all samples of the file at Path. Evaluated every EverySteps steps (0: only at the end)
/// and when the job finishes; EarlyStopPatience evaluations in a row without a better loss stop the job (0: never).
/// </summary>
public sealed record ValidationSpec
{
    public double Fraction { get; init; }
    public string? Path { get; init; }
    public int EverySteps { get; init; }
    public int EarlyStopPatience { get; init; }

    /// <summary>Whether the job is evaluated at all.</summary>
    public bool Enabled => Fraction > 0 || Path is not null;

    /// <summary>Whether an evaluation follows the step that makes <paramref name="done"/> of <paramref name="planned"/> steps.</summary>
    public bool IsDue(long done, long planned) => Enabled && ((EverySteps > 0 && done % EverySteps == 0) || done >= planned);
}

/// <summary>
/// Where batches come from: "synthetic" (a random teacher model makes the targets), "safetensors" or "parquet" (a
/// file at Path; Columns says which Parquet columns hold the samples).
/// </summary>
public sealed record DataSpec
{
    public string Source { get; init; } = "synthetic";
    public string? Path { get; init; }
    /// <summary>Parquet only: the columns that hold features and targets.</summary>
    public ParquetColumns Columns { get; init; } = new();
    public long DataSeed { get; init; } = 1;     // batch i depends only on (DataSeed, i)
    public long TeacherSeed { get; init; } = 2;  // the synthetic teacher's weights

    /// <summary>The file source a path names: "parquet" for a .parquet file, else "safetensors".</summary>
    public static string SourceFor(string path) =>
        System.IO.Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? "parquet" : "safetensors";
}

/// <summary>
/// Everything that defines a training job. Group g's initial weights depend only on (Seed, g) and batch i only on
/// (Data.DataSeed, i), so the same spec trains the same model on any number of workers.
/// </summary>
/// <summary>Where and how often a job saves checkpoints (Directory null: never).</summary>
public sealed record CheckpointSpec
{
    /// <summary>The checkpoint root; the job's checkpoints go to {Directory}/{job name}/step-N/.</summary>
    public string? Directory { get; init; }
    /// <summary>Save after every this many steps (0: only on request and at the end of the job).</summary>
    public int EverySteps { get; init; }
    /// <summary>How many of the newest checkpoints to keep.</summary>
    public int Keep { get; init; } = 3;
}

public sealed record JobSpec
{
    public string Name { get; init; } = "demo";
    public ModelShape Shape { get; init; } = new();
    public int BatchSize { get; init; } = 256;
    /// <summary>A float type; JSON names it as users do (<see cref="DTypeJsonConverter"/>: "bfloat16", "bf16", ...).</summary>
    [JsonConverter(typeof(DTypeJsonConverter))]
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public OptimizerSpec Optimizer { get; init; } = new();
    public int Steps { get; init; } = 1000;
    public long Seed { get; init; } = 0;
    public DataSpec Data { get; init; } = new();
    public LossSpec Loss { get; init; } = new();
    public ValidationSpec Validation { get; init; } = new();
    /// <summary>Devices to train on: "cpu", "cuda:0" (that device on every silo) or "silo/cuda:0". Empty: all of them.</summary>
    public IReadOnlyList<string> Devices { get; init; } = [];
    /// <summary>Workers per matching device; more than one shards a job even on a single device.</summary>
    public int WorkersPerDevice { get; init; } = 1;
    /// <summary>How activations reach workers on other silos (<see cref="TransportChoice"/>).</summary>
    public TransportChoice Transport { get; init; } = TransportChoice.Auto;
    public CheckpointSpec Checkpoint { get; init; } = new();
    /// <summary>
    /// The client's lease on the running job, in seconds: a coordinator that hears nothing from the client that drives
    /// the job for this long checkpoints it (when it has a directory) and stops it, so a job whose client died does not
    /// hold its devices forever. The client renews it several times per lease, also while a long step runs.
    /// </summary>
    public int LeaseSeconds { get; init; } = 60;

    public const int MinLeaseSeconds = 2, MaxLeaseSeconds = 7 * 24 * 3600;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,   // a typo in a spec file is an error, not a default
        AllowDuplicateProperties = false,                                 // "steps" twice: which one was meant?
    };

    public static JobSpec FromJson(string json) =>
        JsonSerializer.Deserialize<JobSpec>(json, Json) ?? throw new JobSpecException("(spec)", "the JSON is null.");

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Throws a <see cref="JobSpecException"/> naming the first invalid field. Touches no data files.</summary>
    public JobSpec Validate()
    {
        // A spec file may say "shape": null or "devices": [null]; each is named here rather than failing as a null reference.
        Present(Name, nameof(Name));
        Present(Shape, nameof(Shape));
        Present(Optimizer, nameof(Optimizer));
        Present(Data, nameof(Data));
        Present(Data.Source, "Data.Source");
        Present(Data.Columns, "Data.Columns");
        Present(Devices, nameof(Devices));
        for (int i = 0; i < Devices.Count; i++) Present(Devices[i], $"Devices[{i}]");
        Present(Checkpoint, nameof(Checkpoint));
        Present(Optimizer.Schedule, "Optimizer.Schedule");
        Present(Loss, nameof(Loss));
        Present(Loss.GroupWeights, "Loss.GroupWeights");
        Present(Validation, nameof(Validation));
        // The checkpoint store's own rule, checked before anything trains: a name it refuses would fail at the first
        // checkpoint and lose the work done until then.
        if (Checkpoints.CheckpointPaths.JobNameProblem(Name) is { } problem) throw new JobSpecException(nameof(Name), problem);
        Positive(Shape.Groups, "Shape.Groups");
        Positive(Shape.Features, "Shape.Features");
        Positive(Shape.Input, "Shape.Input");
        Positive(Shape.Hidden, "Shape.Hidden");
        Positive(Shape.Output, "Shape.Output");
        Positive(BatchSize, nameof(BatchSize));
        if (DType is not (ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new JobSpecException(nameof(DType), $"{Kernels.DTypeNames.Name(DType)} is not a float type; use one of {Kernels.DTypeNames.Accepted}.");
        if (!(Optimizer.LearningRate > 0) || !double.IsFinite(Optimizer.LearningRate))
            throw new JobSpecException("Optimizer.LearningRate", $"must be a positive number; got {Optimizer.LearningRate}.");
        if (!(Optimizer.Beta1 >= 0 && Optimizer.Beta1 < 1))
            throw new JobSpecException("Optimizer.Beta1", $"must be in [0, 1); got {Optimizer.Beta1}.");
        if (!(Optimizer.Beta2 >= 0 && Optimizer.Beta2 < 1))
            throw new JobSpecException("Optimizer.Beta2", $"must be in [0, 1); got {Optimizer.Beta2}.");
        if (!(Optimizer.Eps > 0) || !double.IsFinite(Optimizer.Eps))
            throw new JobSpecException("Optimizer.Eps", $"must be a positive number; got {Optimizer.Eps}.");
        if (!(Optimizer.WeightDecay >= 0) || !double.IsFinite(Optimizer.WeightDecay))
            throw new JobSpecException("Optimizer.WeightDecay", $"must be >= 0; got {Optimizer.WeightDecay}.");
        if (Steps < 0) throw new JobSpecException(nameof(Steps), $"must be >= 0; got {Steps}.");
        ValidateTraining();
        switch (Data.Source)
        {
            case "synthetic": break;
            case "safetensors" or "parquet":
                if (string.IsNullOrEmpty(Data.Path))
                    throw new JobSpecException("Data.Path", $"is required when Data.Source is '{Data.Source}'.");
                if (Data.Source == "parquet") Data.Columns.Validate();
                break;
            default:
                throw new JobSpecException("Data.Source", $"'{Data.Source}' is not a data source; use 'synthetic', 'safetensors' or 'parquet'.");
        }
        for (int i = 0; i < Devices.Count; i++)
        {
            string device = Devices[i].Contains('/') ? Devices[i][(Devices[i].LastIndexOf('/') + 1)..] : Devices[i];
            if (!Kernels.Devices.IsName(device))
                throw new JobSpecException($"Devices[{i}]", $"'{Devices[i]}' is not a device; use 'cpu', 'cuda:N' or 'SILO/cuda:N'.");
        }
        Positive(WorkersPerDevice, nameof(WorkersPerDevice));
        if (Checkpoint.EverySteps < 0) throw new JobSpecException("Checkpoint.EverySteps", $"must be >= 0; got {Checkpoint.EverySteps}.");
        Positive(Checkpoint.Keep, "Checkpoint.Keep");
        if (LeaseSeconds is < MinLeaseSeconds or > MaxLeaseSeconds)
            throw new JobSpecException(nameof(LeaseSeconds), $"must be {MinLeaseSeconds}..{MaxLeaseSeconds} seconds; got {LeaseSeconds}.");
        if (Checkpoint.EverySteps > 0 && string.IsNullOrWhiteSpace(Checkpoint.Directory))
            throw new JobSpecException("Checkpoint.Directory", "is required when Checkpoint.EverySteps is set.");
        if (!Enum.IsDefined(Transport))
            throw new JobSpecException(nameof(Transport), $"{Transport} is not a transport; use one of {EnumNames.List<TransportChoice>()}.");
        // A schedule decays over the job's Steps unless told otherwise; fixed now, so that resuming with more steps
        // continues the schedule the checkpoint was trained with.
        return Optimizer.Schedule is { Kind: not ScheduleKind.Constant, DecaySteps: 0 }
            ? this with { Optimizer = Optimizer with { Schedule = Optimizer.Schedule with { DecaySteps = Math.Max(Steps, 1) } } }
            : this;
    }

    /// <summary>The schedule, clipping, loss and validation settings.</summary>
    void ValidateTraining()
    {
        var schedule = Optimizer.Schedule;
        if (!Enum.IsDefined(schedule.Kind))
            throw new JobSpecException("Optimizer.Schedule.Kind", $"{schedule.Kind} is not a schedule; use constant, cosine or linear.");
        if (schedule.WarmupSteps < 0)
            throw new JobSpecException("Optimizer.Schedule.WarmupSteps", $"must be >= 0; got {schedule.WarmupSteps}.");
        if (schedule.DecaySteps < 0)
            throw new JobSpecException("Optimizer.Schedule.DecaySteps", $"must be >= 0; got {schedule.DecaySteps}.");
        if (schedule.Kind != ScheduleKind.Constant && schedule.DecaySteps > 0 && schedule.DecaySteps <= schedule.WarmupSteps)
            throw new JobSpecException("Optimizer.Schedule.DecaySteps",
                $"({schedule.DecaySteps}) must be greater than WarmupSteps ({schedule.WarmupSteps}): the decay starts when the warm-up ends.");
        if (!(schedule.MinLearningRate >= 0 && schedule.MinLearningRate <= Optimizer.LearningRate))
            throw new JobSpecException("Optimizer.Schedule.MinLearningRate",
                $"must be in [0, LearningRate = {Optimizer.LearningRate}]; got {schedule.MinLearningRate}.");
        if (!(Optimizer.ClipNorm >= 0) || !double.IsFinite(Optimizer.ClipNorm))
            throw new JobSpecException("Optimizer.ClipNorm", $"must be >= 0 (0: no clipping); got {Optimizer.ClipNorm}.");
        if (!Enum.IsDefined(Loss.Kind)) throw new JobSpecException("Loss.Kind", $"{Loss.Kind} is not a loss; use mse or bce.");
        if (Loss.GroupWeights.Count != 0 && Loss.GroupWeights.Count != Shape.Groups)
            throw new JobSpecException("Loss.GroupWeights", $"has {Loss.GroupWeights.Count} weights but the job has {Shape.Groups} groups.");
        for (int g = 0; g < Loss.GroupWeights.Count; g++)
            if (!(Loss.GroupWeights[g] >= 0) || !double.IsFinite(Loss.GroupWeights[g]))
                throw new JobSpecException("Loss.GroupWeights", $"weight {g} must be a finite number >= 0; got {Loss.GroupWeights[g]}.");
        if (Loss.GroupWeights.Count != 0 && Loss.GroupWeights.All(w => w == 0))
            throw new JobSpecException("Loss.GroupWeights", "are all 0: nothing would be trained.");
        if (!(Validation.Fraction >= 0 && Validation.Fraction < 1))
            throw new JobSpecException("Validation.Fraction", $"must be in [0, 1); got {Validation.Fraction}.");
        if (Validation.Fraction > 0 && Validation.Path is not null)
            throw new JobSpecException("Validation.Fraction", "and Validation.Path both name held-out data; give one.");
        if (Validation.Fraction > 0 && Data.Source == "synthetic")
            throw new JobSpecException("Validation.Fraction", "needs a data file to hold samples out of; synthetic data has none (use Validation.Path).");
        if (Validation.Path is { Length: 0 }) throw new JobSpecException("Validation.Path", "is empty.");
        if (Validation.EverySteps < 0) throw new JobSpecException("Validation.EverySteps", $"must be >= 0; got {Validation.EverySteps}.");
        if (Validation.EarlyStopPatience < 0)
            throw new JobSpecException("Validation.EarlyStopPatience", $"must be >= 0; got {Validation.EarlyStopPatience}.");
        if (!Validation.Enabled && (Validation.EverySteps > 0 || Validation.EarlyStopPatience > 0))
            throw new JobSpecException("Validation", "EverySteps and EarlyStopPatience need held-out data: set Validation.Fraction or Validation.Path.");
    }

    /// <summary>
    /// The first field that makes <paramref name="other"/> train a different model than this spec (shape, dtype, seeds,
    /// data and its held-out fraction, batch, optimizer and schedule, loss), or null. Steps, devices, transport,
    /// checkpointing and when validation runs may change when a job resumes.
    /// </summary>
    public string? ModelDifference(JobSpec other) =>
        Shape != other.Shape ? nameof(Shape)
        : DType != other.DType ? nameof(DType)
        : Seed != other.Seed ? nameof(Seed)
        : Data != other.Data ? nameof(Data)
        : BatchSize != other.BatchSize ? nameof(BatchSize)
        : Optimizer != other.Optimizer ? nameof(Optimizer)
        : Loss != other.Loss ? nameof(Loss)
        : Validation.Fraction != other.Validation.Fraction ? "Validation.Fraction"
        : null;

    /// <summary>The part of the spec that makes the towers (<see cref="TowerSpec"/>).</summary>
    public TowerSpec Towers() => new(Shape, Seed, DType, Optimizer);

    /// <summary>Bytes of the largest activation one worker exchanges per message when it holds <paramref name="groups"/> groups.</summary>
    public long SliceBytes(int groups) =>
        (long)BatchSize * groups * Math.Max(Shape.Input, Shape.Output) * Kernels.DTypeNames.ElementSize(DType);

    static void Present(object? value, string field)
    {
        if (value is null) throw new JobSpecException(field, "is missing (null); leave the field out for its default.");
    }

    static void Positive(int value, string field)
    {
        if (value <= 0) throw new JobSpecException(field, $"must be > 0; got {value}.");
    }
}
