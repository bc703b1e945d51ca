using Orchestrator.Grains;
using Orchestrator.Training;
using Spectre.Console;
using Orchestrator.Client.TensorBoard;

namespace Orchestrator.Client;

/// <summary>
/// Per-step metrics of a run that starts at step <paramref name="firstStep"/> (0, or the step a resumed job continues
/// from): the live line's text, TensorBoard scalars and the final summary.
/// </summary>
public sealed class TrainingReport(JobSpec spec, string? logDir, long firstStep = 0) : IDisposable
{
    readonly List<StepMetrics> steps = [];
    readonly EventFileWriter? tensorboard = logDir is null ? null : Started(spec, new EventFileWriter(logDir));
    readonly PhaseTimer wall = new();

    public IReadOnlyList<StepMetrics> Steps => steps;
    public long FirstStep => firstStep;
    /// <summary>The step the job trains next (a recovered job may have rewound to its checkpoint).</summary>
    public long NextStep => steps.Count == 0 ? firstStep : steps[^1].Step + 1;

    /// <summary>The job's settings as TensorBoard hyperparameters (HParams tab) and its whole spec as text.</summary>
    static EventFileWriter Started(JobSpec spec, EventFileWriter writer)
    {
        writer.HParams(new Dictionary<string, object>
        {
            ["groups"] = spec.Shape.Groups, ["features"] = spec.Shape.Features, ["input"] = spec.Shape.Input,
            ["hidden"] = spec.Shape.Hidden, ["output"] = spec.Shape.Output, ["batch_size"] = spec.BatchSize, ["dtype"] = spec.DType,
            ["lr"] = spec.Optimizer.LearningRate, ["weight_decay"] = spec.Optimizer.WeightDecay,
            ["lr_schedule"] = spec.Optimizer.Schedule.Kind.ToString().ToLowerInvariant(), ["warmup_steps"] = spec.Optimizer.Schedule.WarmupSteps,
            ["clip_norm"] = spec.Optimizer.ClipNorm, ["loss"] = spec.Loss.Kind.ToString().ToLowerInvariant(), ["steps"] = spec.Steps,
            ["seed"] = spec.Seed, ["data"] = spec.Data.Source,
        });
        writer.Text("job/spec", $"```json\n{spec.ToJson()}\n```", 0);
        return writer;
    }

    /// <summary>The last evaluation on the held-out data, if the job has run one.</summary>
    public EvalMetrics? LastEval { get; private set; }

    public void Add(StepMetrics metrics)
    {
        steps.Add(metrics);
        int step = (int)metrics.Step;
        tensorboard?.Scalar("train/loss", metrics.Loss, step);
        tensorboard?.Scalar("train/samples_per_second", metrics.SamplesPerSecond, step);
        tensorboard?.Scalar("train/lr", metrics.LearningRate, step);
        if (metrics.GradientNorm is { } norm) tensorboard?.Scalar("train/grad_norm", norm, step);
        if (metrics.Eval is not { } eval) return;
        LastEval = eval;
        // Logged at the step count it follows, as "train/loss" of that step's batch is.
        tensorboard?.Scalar("val/loss", eval.Loss, step);
        foreach (var group in eval.Groups)
        {
            tensorboard?.Scalar($"val/group{group.Group}/loss", group.Loss, step);
            if (group.Auc is { } auc) tensorboard?.Scalar($"val/group{group.Group}/auc", auc, step);
        }
    }

    /// <summary>"val@900 0.0123 (best 0.0119 @ 800)": the last evaluation, after step 900.</summary>
    static string Describe(EvalMetrics eval) =>
        $"val@{eval.Step} {eval.Loss:G4}" + (eval.Best ? " (best)" : $" (best {eval.BestLoss:G4} @ {eval.BestStep})");

    /// <summary>"step 120/1000  loss 0.01234  13,210 samples/s  ETA 00:00:07"</summary>
    public string Line()
    {
        if (steps.Count == 0) return $"starting {spec.Name}";
        var last = steps[^1];
        var recent = steps.TakeLast(20).ToList();
        double msPerStep = recent.Average(s => s.TotalMs);
        long done = last.Step + 1;   // not a count: a recovered job repeats the steps since its checkpoint
        var eta = TimeSpan.FromMilliseconds(msPerStep * (spec.Steps - done));
        return $"step {done}/{spec.Steps}  loss {last.Loss:G4}{(LastEval is { } eval ? "  " + Describe(eval) : "")}  lr {last.LearningRate:G3}  " +
               $"{recent.Average(s => s.SamplesPerSecond):N0} samples/s  ETA {eta:hh\\:mm\\:ss}";
    }

    public Panel Summary(JobStatus status)
    {
        tensorboard?.HParamsEnd(succeeded: status.State == JobState.Finished);
        var table = new Grid().AddColumn(new GridColumn().PadRight(2)).AddColumn();
        void Row(string what, string value) => table.AddRow(new Markup($"[bold]{what}[/]"), new Text(value));
        Row("workers", string.Join("\n", status.Workers.Select(w =>
            $"{w.Silo}/{w.Device}  groups [{w.FirstGroup}, {w.FirstGroup + w.GroupCount})  {w.Transport}")));
        Row("coordinator", status.CoordinatorSilo);
        Row("steps", $"{status.StepsDone} of {spec.Steps}" + (firstStep > 0 ? $" (resumed at step {firstStep})" : ""));
        if (status.Recoveries > 0) Row("recoveries", $"{status.Recoveries}: lost workers were replaced and training went on from the last checkpoint");
        if (status.EndNote is { } end) Row("finished", end);
        if (status.LastCheckpointStep is { } saved) Row("checkpoint", $"step {saved} in {spec.Checkpoint.Directory}");
        if ((status.LastEval ?? LastEval) is { } last)
        {
            Row("validation", $"{Describe(last)} on {last.Samples:N0} held-out samples after step {last.Step}" +
                (spec.Checkpoint.Directory is null ? "" : $"; the best checkpoint is step {last.BestStep} ('best' in the job's directory)"));
            Row(spec.Loss.Kind == LossKind.Bce ? "per group (logloss, AUC)" : "per group (MSE)", string.Join("\n", last.Groups.Select(g =>
                $"group {g.Group}: {g.Loss:G5}" + (g.Auc is { } auc ? $"  AUC {auc:F4}" : spec.Loss.Kind == LossKind.Bce ? "  AUC n/a (targets not all 0/1, or one class only)" : ""))));
        }
        if (steps.Count > 0)
        {
            Row("loss", $"{steps[0].Loss:G5} -> {steps[^1].Loss:G5} ({steps[0].Loss / steps[^1].Loss:F1}x lower)");
            Row("wall time", $"{wall.TotalMs / 1000:F1} s");
            Row("samples/s", $"{steps.Sum(s => s.BatchSize) * 1000.0 / steps.Sum(s => s.TotalMs):N0} (mean over steps)");
            Row("ms per step", $"{steps.Average(s => s.TotalMs):F2}: trunk fwd {steps.Average(s => s.TrunkForwardMs):F2}, " +
                $"towers fwd {steps.Average(s => s.TowerForwardMs):F2}, loss {steps.Average(s => s.LossMs):F2}, " +
                $"towers bwd {steps.Average(s => s.TowerBackwardMs):F2}, trunk bwd {steps.Average(s => s.TrunkBackwardMs):F2}");
        }
        if (logDir is not null) Row("tensorboard", Path.GetFullPath(logDir));
        return new Panel(table).Header($" {Markup.Escape(spec.Name)} ");
    }

    public void Dispose() => tensorboard?.Dispose();
}
