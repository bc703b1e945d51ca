using System.Globalization;
using System.Text.Json.Nodes;
using Orchestrator.Kernels;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Client.Commands;

/// <summary>
/// The spec saved in a job's newest checkpoint that this machine can read: what `train --resume` starts from, so that
/// resuming needs only --checkpoint-dir, --name and what is to change (--steps, --devices, ...).
/// </summary>
public sealed record CheckpointedJob(JobSpec Spec, long Step, string Directory)
{
    /// <summary>
    /// The options of `train` that define the model, each with the value it sets in a spec (as text, so that a
    /// difference can be shown): what a resumed job may not change (<see cref="JobSpec.ModelDifference"/>).
    /// </summary>
    static readonly (string Option, Func<JobSpec, string?> Value)[] ModelOptions =
    [
        ("--groups", s => Text(s.Shape.Groups)),
        ("--features", s => Text(s.Shape.Features)),
        ("--input", s => Text(s.Shape.Input)),
        ("--hidden", s => Text(s.Shape.Hidden)),
        ("--output", s => Text(s.Shape.Output)),
        ("--batch-size", s => Text(s.BatchSize)),
        ("--dtype", s => DTypeNames.Name(s.DType)),
        ("--seed", s => Text(s.Seed)),
        ("--lr", s => Text(s.Optimizer.LearningRate)),
        ("--beta1", s => Text(s.Optimizer.Beta1)),
        ("--beta2", s => Text(s.Optimizer.Beta2)),
        ("--eps", s => Text(s.Optimizer.Eps)),
        ("--weight-decay", s => Text(s.Optimizer.WeightDecay)),
        ("--clip-norm", s => Text(s.Optimizer.ClipNorm)),
        ("--lr-schedule", s => EnumNames.Of(s.Optimizer.Schedule.Kind)),
        ("--warmup-steps", s => Text(s.Optimizer.Schedule.WarmupSteps)),
        ("--decay-steps", s => Text(s.Optimizer.Schedule.DecaySteps)),
        ("--min-lr", s => Text(s.Optimizer.Schedule.MinLearningRate)),
        ("--loss", s => EnumNames.Of(s.Loss.Kind)),
        ("--loss-weights", s => string.Join(",", s.Loss.GroupWeights.Select(w => Text(w)))),
        ("--val-fraction", s => Text(s.Validation.Fraction)),
        ("--data", s => s.Data.Source),
        ("--data-path", s => s.Data.Path),
        ("--feature-columns", s => string.Join(",", s.Data.Columns.Features)),
        ("--target-columns", s => string.Join(",", s.Data.Columns.Targets)),
        ("--data-seed", s => Text(s.Data.DataSeed)),
        ("--teacher-seed", s => Text(s.Data.TeacherSeed)),
    ];

    /// <summary>
    /// The newest checkpoint of <paramref name="job"/> under <paramref name="root"/> whose manifest reads and validates,
    /// or null when this machine has no such directory (a cluster's silos may see paths this client does not) or no
    /// such checkpoint. The tensor files are left to the coordinator, which verifies them before it resumes and takes an
    /// older checkpoint when they are damaged: every checkpoint of a job trains the same model.
    /// </summary>
    public static CheckpointedJob? Find(string? root, string job)
    {
        if (root is null || !System.IO.Directory.Exists(root)) return null;   // a CheckpointStore would create it
        var store = new CheckpointStore(root);
        foreach (long step in store.List(job).Reverse())
        {
            try
            {
                var checkpoint = store.Open(job, step);
                return new CheckpointedJob(checkpoint.Manifest.Job, step, checkpoint.Directory);
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                // an unreadable manifest: the coordinator sets this step aside too; an older one tells the same model
            }
        }
        return null;
    }

    /// <summary>
    /// The saved spec with the fields a spec file gives replaced (objects field by field, names case-insensitive as
    /// <see cref="JobSpec.Json"/> reads them): a file that names only steps and devices keeps the saved model.
    /// </summary>
    public JobSpec WithSpecFile(string json)
    {
        var merged = Overlay(JsonNode.Parse(Spec.ToJson())!, JsonNode.Parse(json));
        return JobSpec.FromJson(merged?.ToJsonString() ?? "null");
    }

    static JsonNode? Overlay(JsonNode? saved, JsonNode? given)
    {
        if (saved is not JsonObject into || given is not JsonObject from) return given?.DeepClone();
        foreach (var (name, value) in from)
        {
            string key = into.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)) ?? name;
            into[key] = Overlay(into[key], value);
        }
        return into;
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> when <paramref name="resumed"/> trains another model than this
    /// checkpoint, naming the option (or, for a spec file, the field) that differs and both values.
    /// </summary>
    public void CheckSameModel(JobSpec resumed)
    {
        if (Spec.ModelDifference(resumed) is not { } field) return;
        const string rule = "a resumed job keeps its model settings (only --steps, --devices, --workers-per-device, --transport, " +
                            "--lease and the checkpoint options may change)";
        string where = $"the checkpoint of job '{Spec.Name}' at step {Step} ({Directory})";
        if (ModelOptions.FirstOrDefault(o => o.Value(resumed) != o.Value(Spec)) is ({ } option, { } read))
            throw new ArgumentException($"{option} {read(resumed)} conflicts with {where}, which has {option} {read(Spec)}: {rule}; " +
                                        $"leave {option} out to use the checkpoint's.");
        throw new ArgumentException($"{field} {Field(resumed, field)} (from --spec) conflicts with {where}, which has {field} " +
                                    $"{Field(Spec, field)}: {rule}.");
    }

    /// <summary>One top-level field of a spec as JSON, the way a spec file writes it.</summary>
    static string Field(JobSpec spec, string field) =>
        JsonNode.Parse(spec.ToJson())!.AsObject().First(p => string.Equals(p.Key, field, StringComparison.OrdinalIgnoreCase)).Value?.ToJsonString() ?? "null";

    static string Text(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
}
