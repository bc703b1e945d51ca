using System.ComponentModel;
using Orchestrator.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>
/// The job of `train`: the defaults of <see cref="JobSpec"/>, or a JSON spec file, with any option given on the
/// command line taking precedence.
/// </summary>
public sealed class TrainSettings : ConnectionSettings
{
    [CommandOption("--spec <FILE>")]
    [Description("Job spec as JSON (the JobSpec record; unknown fields are errors). Options below override its fields.")]
    public string? SpecFile { get; init; }

    [CommandOption("--name <NAME>")]
    [Description("Job name: letters, digits, '.', '_', '-'. Default: demo.")]
    public string? Name { get; init; }

    [CommandOption("--groups <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Number of groups (towers) N. Default: 4.")]
    public int? Groups { get; init; }

    [CommandOption("--features <D>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Width of the feature vectors the trunk reads, D_feat. Default: 32.")]
    public int? Features { get; init; }

    [CommandOption("--input <D>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Tower input width D_in (the trunk outputs N*D_in). Default: 32.")]
    public int? Input { get; init; }

    [CommandOption("--hidden <H>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Tower hidden width H of the SwiGLU MLP. Default: 64.")]
    public int? Hidden { get; init; }

    [CommandOption("--output <D>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Tower output width D_out. Default: 16.")]
    public int? Output { get; init; }

    [CommandOption("-b|--batch-size <B>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Samples per step. Default: 256.")]
    public int? BatchSize { get; init; }

    [CommandOption("--dtype <DTYPE>"), TypeConverter(typeof(DTypeConverter))]
    [Description("float64, float32, float16 or bfloat16 (or f64, f32, f16, bf16). Half precision trains with float32 master weights and AdamW moments (what checkpoints save) and half-precision copies for the GEMMs; for large jobs prefer bfloat16, whose range holds MSE's small gradients. Default: float32.")]
    public TorchSharp.torch.ScalarType? DType { get; init; }

    [CommandOption("--lr <RATE>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("AdamW learning rate. Default: 0.01.")]
    public double? LearningRate { get; init; }

    [CommandOption("--beta1 <BETA>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("AdamW beta1. Default: 0.9.")]
    public double? Beta1 { get; init; }

    [CommandOption("--beta2 <BETA>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("AdamW beta2. Default: 0.999.")]
    public double? Beta2 { get; init; }

    [CommandOption("--eps <EPS>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("AdamW epsilon. Default: 1e-8.")]
    public double? Eps { get; init; }

    [CommandOption("--weight-decay <WD>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("AdamW decoupled weight decay. Default: 0.01.")]
    public double? WeightDecay { get; init; }

    [CommandOption("--lr-schedule <KIND>"), TypeConverter(typeof(EnumNameConverter<ScheduleKind>))]
    [Description("How the learning rate changes: constant, cosine or linear (after --warmup-steps, a cosine or linear decay from --lr to --min-lr at --decay-steps, then flat). Logged as train/lr. Default: constant.")]
    public ScheduleKind? LearningRateSchedule { get; init; }

    [CommandOption("--warmup-steps <STEPS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Steps over which the learning rate rises linearly from lr/STEPS to --lr (any schedule). Default: 0.")]
    public int? WarmupSteps { get; init; }

    [CommandOption("--decay-steps <STEPS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("The step at which a cosine or linear schedule reaches --min-lr. Default: --steps, fixed when the job starts (a resumed job keeps it).")]
    public int? DecaySteps { get; init; }

    [CommandOption("--min-lr <RATE>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("The floor a cosine or linear schedule decays to. Default: 0.")]
    public double? MinLearningRate { get; init; }

    [CommandOption("--clip-norm <NORM>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("Clip gradients by their global L2 norm over the whole job (trunk and every worker's shard, added up exactly before any update) to NORM, as torch.nn.utils.clip_grad_norm_; logged as train/grad_norm. Costs a reduction per step. Default: 0 (off).")]
    public double? ClipNorm { get; init; }

    [CommandOption("--loss <KIND>"), TypeConverter(typeof(EnumNameConverter<LossKind>))]
    [Description("mse (mean squared error) or bce (binary cross-entropy on logits: targets must be in [[0, 1]]; batches with others are rejected by number). Default: mse.")]
    public LossKind? Loss { get; init; }

    [CommandOption("--loss-weights <LIST>")]
    [Description("Per-group weights of the loss, N comma-separated numbers >= 0: loss = mean over groups of weight * group loss. Default: all 1.")]
    public string? LossWeights { get; init; }

    [CommandOption("--val-fraction <F>"), TypeConverter(typeof(RealNumberConverter))]
    [Description("Hold out the last F of the data file's samples (0 < F < 1; never trained on, as Keras' validation_split) and evaluate on them. Shuffle a file that is sorted. Default: 0 (none).")]
    public double? ValFraction { get; init; }

    [CommandOption("--val-data <FILE>")]
    [Description("Evaluate on all samples of this file: .safetensors or .parquet (by its extension), in the layout of --data-path (Parquet: the same --feature-columns and --target-columns). Checked when the job starts. Works with synthetic data too.")]
    public string? ValData { get; init; }

    [CommandOption("--eval-every <STEPS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Evaluate on the held-out data every STEPS steps, on the cluster (workers run the towers forward only); always at the end. The loss shows in the progress line, the summary and TensorBoard (val/*: per group, and AUC for bce); the best evaluation's checkpoint is kept as 'best'. Default: only at the end.")]
    public int? EvalEvery { get; init; }

    [CommandOption("--early-stop-patience <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Stop the job when N evaluations in a row bring no lower validation loss than the best. Default: 0 (never).")]
    public int? EarlyStopPatience { get; init; }

    [CommandOption("-s|--steps <STEPS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Training steps. Default: 1000.")]
    public int? Steps { get; init; }

    [CommandOption("--seed <SEED>"), TypeConverter(typeof(LongWholeNumberConverter))]
    [Description("Seed of the initial weights (group g's weights depend only on seed and g). Default: 0.")]
    public long? Seed { get; init; }

    [CommandOption("--data <SOURCE>")]
    [Description("synthetic (a random teacher model makes the targets), safetensors or parquet (--data-path). Default: synthetic, or the format of --data-path (parquet for a .parquet file, else safetensors).")]
    public string? DataSource { get; init; }

    [CommandOption("--data-path <FILE>")]
    [Description("A .safetensors file with 'features' (S, D_feat) and 'targets' (S, N, D_out), or a .parquet file with the columns of --feature-columns and --target-columns; read by the coordinator's silo.")]
    public string? DataPath { get; init; }

    [CommandOption("--feature-columns <LIST>")]
    [Description("Parquet: the columns holding the D_feat features, comma-separated, in order: one list column of D_feat numbers, or D_feat scalar columns (list columns share what scalar columns leave equally). float, double, int32 or int64; no nulls. Default: features.")]
    public string? FeatureColumns { get; init; }

    [CommandOption("--target-columns <LIST>")]
    [Description("Parquet: the columns holding the N*D_out targets, comma-separated, read group-major (value g*D_out+o is group g's output o): one list column of N*D_out numbers, N list columns of D_out (one per group) or N*D_out scalar columns. Default: targets.")]
    public string? TargetColumns { get; init; }

    [CommandOption("--data-seed <SEED>"), TypeConverter(typeof(LongWholeNumberConverter))]
    [Description("Seed of the batches (synthetic features, file shuffling): batch i depends only on it and i. Default: 1.")]
    public long? DataSeed { get; init; }

    [CommandOption("--teacher-seed <SEED>"), TypeConverter(typeof(LongWholeNumberConverter))]
    [Description("Seed of the synthetic teacher's weights. Default: 2.")]
    public long? TeacherSeed { get; init; }

    [CommandOption("--devices <LIST>")]
    [Description("Cluster devices to train on, comma-separated: cpu, cuda:0 (on every silo) or SILO/cuda:0. Default: all.")]
    public string? Devices { get; init; }

    [CommandOption("--workers-per-device <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Workers on each chosen device (shards a job even on one device). Default: 1.")]
    public int? WorkersPerDevice { get; init; }

    [CommandOption("--transport <KIND>"), TypeConverter(typeof(EnumNameConverter<TransportChoice>))]
    [Description("How activations reach workers on other silos: auto, message, channel, process or ipc. auto sends GPU workers' slices of 1 MiB or more by reference to silos of the coordinator's process (process), through CUDA IPC to silo processes of its host (ipc) and over the TCP data channel to other hosts (channel); Orleans messages carry the rest (message). Default: auto.")]
    public TransportChoice? Transport { get; init; }

    [CommandOption("--local-devices <LIST>")]
    [Description("Devices of the silo started in this process when no gateway is configured.")]
    [DefaultValue("cpu")]
    public string LocalDevices { get; init; } = "cpu";

    [CommandOption("--local-silos <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Silos started in this process when no gateway is configured, each owning --local-devices (e.g. two silos sharing one GPU). Default: 1.")]
    [DefaultValue(1)]
    public int LocalSilos { get; init; } = 1;

    [CommandOption("--local-processes <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Silo host processes started beside the in-process silo(s) when no gateway is configured, each owning --local-devices; " +
                 "on one GPU, '--local-processes 1 --local-devices cuda:0' is the local single-GPU cluster of two processes (CUDA IPC between them). " +
                 "The silo host must be beside this program (as in the package) or named by ORCHESTRATOR_SILO_HOST. Default: 0.")]
    [DefaultValue(0)]
    public int LocalProcesses { get; init; }

    [CommandOption("--checkpoint-dir <DIR>")]
    [Description("Save checkpoints (per-shard safetensors files and a manifest) under DIR/JOB/step-N/. The job also saves when it ends.")]
    public string? CheckpointDir { get; init; }

    [CommandOption("--checkpoint-every <STEPS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Save a checkpoint after every STEPS steps (needs --checkpoint-dir). Default: only at the end.")]
    public int? CheckpointEvery { get; init; }

    [CommandOption("--checkpoint-keep <N>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Keep the N newest checkpoints of the job; the best one by validation loss (the 'best' pointer) is kept too, whatever its age. Default: 3.")]
    public int? CheckpointKeep { get; init; }

    [CommandOption("--resume")]
    [Description("Continue the job from its latest checkpoint in --checkpoint-dir. The settings saved in that checkpoint are the base (then --spec, then the options given), so '--checkpoint-dir DIR --name JOB --resume' is enough, with --steps, --devices, --workers-per-device, --transport, --lease or the checkpoint options to change them; a model option that differs from the checkpoint's is an error. When DIR is not readable here (a cluster's silos see it, this client does not), give every option the job was started with.")]
    public bool Resume { get; init; }

    [CommandOption("--lease <SECONDS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("The job's lease: a coordinator that hears nothing from this client for SECONDS (it renews several times per lease, also during long steps) checkpoints the job, when it has --checkpoint-dir, and releases its devices; --resume then takes it over. Default: 60.")]
    public int? LeaseSeconds { get; init; }

    [CommandOption("--logdir <DIR>")]
    [Description("Write TensorBoard events into this directory: per step train/loss, train/samples_per_second, train/lr and (with --clip-norm) train/grad_norm; per evaluation val/loss, val/groupG/loss and (bce) val/groupG/auc; the job's settings as hparams and its spec as text.")]
    public string? LogDir { get; init; }

    JobSpec? validated;

    /// <summary>
    /// The job, validated (once: <see cref="Validate"/> reports its problems before the command runs): the defaults, or
    /// with --resume the spec of the job's newest checkpoint readable here (<see cref="ResumedFrom"/>); then the spec
    /// file's fields; then the options that were given. A resumed job that would train another model than its
    /// checkpoint is an error naming the option.
    /// </summary>
    public JobSpec Spec => validated ??= Resolve().Validate();

    JobSpec Resolve()
    {
        var json = SpecFile is null ? null : File.ReadAllText(SpecFile);
        var file = json is null ? null : JobSpec.FromJson(json);
        var saved = ResumedFrom(file);
        var spec = WithOptions(saved is null ? file ?? new JobSpec() : json is null ? saved.Spec : saved.WithSpecFile(json));
        saved?.CheckSameModel(spec);
        return spec;
    }

    /// <summary>With --resume, the job's newest checkpoint that this machine can read (null when it cannot: a cluster's directory).</summary>
    public CheckpointedJob? ResumedFrom() => ResumedFrom(SpecFile is null ? null : JobSpec.FromJson(File.ReadAllText(SpecFile)));

    CheckpointedJob? ResumedFrom(JobSpec? file) =>
        Resume ? CheckpointedJob.Find(CheckpointDir ?? file?.Checkpoint.Directory, Name ?? file?.Name ?? new JobSpec().Name) : null;

    /// <summary><paramref name="spec"/> with the options that were given.</summary>
    JobSpec WithOptions(JobSpec spec) =>
        spec with
        {
            Name = Name ?? spec.Name,
            Shape = spec.Shape with
            {
                Groups = Groups ?? spec.Shape.Groups,
                Features = Features ?? spec.Shape.Features,
                Input = Input ?? spec.Shape.Input,
                Hidden = Hidden ?? spec.Shape.Hidden,
                Output = Output ?? spec.Shape.Output,
            },
            BatchSize = BatchSize ?? spec.BatchSize,
            DType = DType ?? spec.DType,
            Optimizer = spec.Optimizer with
            {
                LearningRate = LearningRate ?? spec.Optimizer.LearningRate,
                Beta1 = Beta1 ?? spec.Optimizer.Beta1,
                Beta2 = Beta2 ?? spec.Optimizer.Beta2,
                Eps = Eps ?? spec.Optimizer.Eps,
                WeightDecay = WeightDecay ?? spec.Optimizer.WeightDecay,
                ClipNorm = ClipNorm ?? spec.Optimizer.ClipNorm,
                Schedule = spec.Optimizer.Schedule with
                {
                    Kind = LearningRateSchedule ?? spec.Optimizer.Schedule.Kind,
                    WarmupSteps = WarmupSteps ?? spec.Optimizer.Schedule.WarmupSteps,
                    DecaySteps = DecaySteps ?? spec.Optimizer.Schedule.DecaySteps,
                    MinLearningRate = MinLearningRate ?? spec.Optimizer.Schedule.MinLearningRate,
                },
            },
            Loss = spec.Loss with
            {
                Kind = Loss ?? spec.Loss.Kind,
                GroupWeights = LossWeights is null ? spec.Loss.GroupWeights : OptionValues.Numbers("--loss-weights", LossWeights),
            },
            Validation = spec.Validation with
            {
                Fraction = ValFraction ?? spec.Validation.Fraction,
                Path = ValData is null ? spec.Validation.Path : Path.GetFullPath(ValData),
                EverySteps = EvalEvery ?? spec.Validation.EverySteps,
                EarlyStopPatience = EarlyStopPatience ?? spec.Validation.EarlyStopPatience,
            },
            Steps = Steps ?? spec.Steps,
            Seed = Seed ?? spec.Seed,
            Data = spec.Data with
            {
                Source = DataSource ?? (DataPath is null ? spec.Data.Source : DataSpec.SourceFor(DataPath)),
                Path = DataPath is null ? spec.Data.Path : Path.GetFullPath(DataPath),
                Columns = spec.Data.Columns with
                {
                    Features = FeatureColumns is null ? spec.Data.Columns.Features : List(FeatureColumns),
                    Targets = TargetColumns is null ? spec.Data.Columns.Targets : List(TargetColumns),
                },
                DataSeed = DataSeed ?? spec.Data.DataSeed,
                TeacherSeed = TeacherSeed ?? spec.Data.TeacherSeed,
            },
            Devices = Devices is null ? spec.Devices : List(Devices),
            WorkersPerDevice = WorkersPerDevice ?? spec.WorkersPerDevice,
            Transport = Transport ?? spec.Transport,
            LeaseSeconds = LeaseSeconds ?? spec.LeaseSeconds,
            Checkpoint = spec.Checkpoint with
            {
                Directory = CheckpointDir is null ? spec.Checkpoint.Directory : Path.GetFullPath(CheckpointDir),
                EverySteps = CheckpointEvery ?? spec.Checkpoint.EverySteps,
                Keep = CheckpointKeep ?? spec.Checkpoint.Keep,
            },
        };

    /// <summary>The items of a comma-separated option value, trimmed, empty ones dropped.</summary>
    internal static string[] List(string commaSeparated) => commaSeparated.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override ValidationResult Validate()
    {
        if (base.Validate() is { Successful: false } connection) return connection;
        if (SpecFile is not null && !File.Exists(SpecFile)) return ValidationResult.Error($"--spec: file '{SpecFile}' does not exist.");
        try
        {
            _ = Spec;
            return ValidationResult.Success();
        }
        catch (Exception e) when (e is ArgumentException or System.Text.Json.JsonException)
        {
            return ValidationResult.Error(e.Message);
        }
    }
}
