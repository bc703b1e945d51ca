using Orchestrator.Grains;
using Orchestrator.Training;
using Spectre.Console;
using Orchestrator.Client.TensorBoard;

namespace Orchestrator.Client;

/// <summary>
/// What a run that starts at step <paramref name="firstStep"/> (0, or the step a resumed job continues from) has done:
/// the live line's text, TensorBoard scalars and the final summary. It keeps running sums and the last step, not every
/// step's metrics, so its memory stays flat over any number of steps.
/// </summary>
public sealed class TrainingReport(JobSpec spec, string? logDir, long firstStep = 0, Func<double>? clock = null) : IDisposable
{
    readonly EventFileWriter? tensorboard = logDir is null ? null : Started(spec, new EventFileWriter(logDir));
    readonly Throughput throughput = new(Throughput.WarmupFor(spec.Steps - firstStep), clock);
    /// <summary>Sums of the device-side phase times over the run (ms): trunk fwd, towers fwd, loss, towers bwd, trunk bwd, whole step.</summary>
    readonly double[] phaseSums = new double[6];
    /// <summary>The same sums when the warm-up ended, so that the summary's means are of the steady steps alone.</summary>
    double[]? warmupPhaseSums;
    double? firstLoss;
    StepMetrics? last;

    public long FirstStep => firstStep;
    /// <summary>Steps this run has taken (a recovered job's repeated steps count again).</summary>
    public long StepsTaken => throughput.Steps;
    /// <summary>The step the job trains next (a recovered job may have rewound to its checkpoint).</summary>
    public long NextStep => last is null ? firstStep : last.Step + 1;

    /// <summary>The job's settings as TensorBoard hyperparameters (HParams tab) and its whole spec as text.</summary>
    static EventFileWriter Started(JobSpec spec, EventFileWriter writer)
    {
        writer.HParams(new Dictionary<string, object>
        {
            ["groups"] = spec.Shape.Groups, ["features"] = spec.Shape.Features, ["input"] = spec.Shape.Input,
            ["hidden"] = spec.Shape.Hidden, ["output"] = spec.Shape.Output, ["batch_size"] = spec.BatchSize, ["dtype"] = spec.DType,
            ["lr"] = spec.Optimizer.LearningRate, ["weight_decay"] = spec.Optimizer.WeightDecay,
            ["lr_schedule"] = EnumNames.Of(spec.Optimizer.Schedule.Kind), ["warmup_steps"] = spec.Optimizer.Schedule.WarmupSteps,
            ["clip_norm"] = spec.Optimizer.ClipNorm, ["loss"] = EnumNames.Of(spec.Loss.Kind), ["steps"] = spec.Steps,
            ["seed"] = spec.Seed, ["data"] = spec.Data.Source,
        });
        writer.Text("job/spec", $"```json\n{spec.ToJson()}\n```", 0);
        return writer;
    }

    /// <summary>The last evaluation on the held-out data, if the job has run one.</summary>
    public EvalMetrics? LastEval { get; private set; }

    public void Add(StepMetrics metrics)
    {
        throughput.Add(metrics.BatchSize);
        firstLoss ??= metrics.Loss;
        last = metrics;
        double[] phases = [metrics.TrunkForwardMs, metrics.TowerForwardMs, metrics.LossMs, metrics.TowerBackwardMs, metrics.TrunkBackwardMs, metrics.TotalMs];
        for (int i = 0; i < phases.Length; i++) phaseSums[i] += phases[i];
        if (throughput.Steps == throughput.WarmupSteps) warmupPhaseSums = [.. phaseSums];
        long step = metrics.Step;
        tensorboard?.Scalar("train/loss", metrics.Loss, step);
        tensorboard?.Scalar("train/samples_per_second", throughput.RecentSamplesPerSecond, step);
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

    /// <summary>"step 120/1000  loss 0.01234  lr 0.01  13,210 samples/s  ETA 00:00:07": rates over the last steps' wall time.</summary>
    public string Line()
    {
        if (last is null) return $"starting {spec.Name}";
        long done = last.Step + 1;   // not a count: a recovered job repeats the steps since its checkpoint
        var eta = TimeSpan.FromSeconds(throughput.RecentSecondsPerStep * Math.Max(0, spec.Steps - done));
        return $"step {done}/{spec.Steps}  loss {last.Loss:G4}{(LastEval is { } eval ? "  " + Describe(eval) : "")}  lr {last.LearningRate:G3}  " +
               $"{throughput.RecentSamplesPerSecond:N0} samples/s  ETA {eta:hh\\:mm\\:ss}";
    }

    public Panel Summary(JobStatus status)
    {
        tensorboard?.HParamsEnd(succeeded: status.State == JobState.Finished);
        var table = new Grid().AddColumn(new GridColumn().PadRight(2)).AddColumn();
        void Row(string what, string value) => table.AddRow(new Markup($"[bold]{what}[/]"), new Text(value));
        Row("workers", string.Join("\n", status.Workers.Select(w =>
            $"{w.Silo}/{w.Device}  groups [{w.FirstGroup}, {w.FirstGroup + w.GroupCount})  {Training.EnumNames.Of(w.Transport)}")));
        Row("coordinator", status.CoordinatorSilo);
        Row("steps", $"{status.StepsDone} of {spec.Steps}" + (firstStep > 0 ? $" (resumed at step {firstStep})" : ""));
        if (status.Recoveries > 0) Row("recoveries", $"{status.Recoveries}: lost workers were replaced and training went on from the last checkpoint");
        if (status.EndNote is { } end) Row("finished", end);
        if (status.LastCheckpointStep is { } saved) Row("checkpoint", $"step {saved} in {spec.Checkpoint.Directory}");
        if ((status.LastEval ?? LastEval) is { } eval)
        {
            Row("validation", $"{Describe(eval)} on {eval.Samples:N0} held-out samples after step {eval.Step}" +
                (spec.Checkpoint.Directory is null ? "" : $"; the best checkpoint is step {eval.BestStep} ('best' in the job's directory)"));
            Row(spec.Loss.Kind == LossKind.Bce ? "per group (logloss, AUC)" : "per group (MSE)", string.Join("\n", eval.Groups.Select(g =>
                $"group {g.Group}: {g.Loss:G5}" + (g.Auc is { } auc ? $"  AUC {auc:F4}" : spec.Loss.Kind == LossKind.Bce ? "  AUC n/a (targets not all 0/1, or one class only)" : ""))));
        }
        if (last is not null && firstLoss is { } first)
        {
            long taken = throughput.Steps;
            // After the warm-up once a step after it has returned, as the wall-clock rate; before that over every step.
            double[]? warm = taken > throughput.WarmupSteps ? warmupPhaseSums : null;
            long counted = warm is null ? taken : taken - throughput.WarmupSteps;
            double Mean(int phase) => (phaseSums[phase] - (warm?[phase] ?? 0)) / counted;
            Row("loss", $"{first:G5} -> {last.Loss:G5} ({first / last.Loss:F1}x lower)");
            Row("wall time", $"{throughput.ElapsedSeconds:F1} s for {taken} steps, of which the first {Math.Min(taken, throughput.WarmupSteps)} " +
                             $"(warm-up) took {throughput.WarmupSeconds:F1} s");
            Row("samples/s", throughput.SteadySamplesPerSecond is { } steadyRate
                ? $"{steadyRate:N0} after the warm-up; {throughput.SamplesPerSecond:N0} over the whole run (samples over wall time)"
                : $"{throughput.SamplesPerSecond:N0} over the whole run (samples over wall time; too short for a warm-up apart)");
            Row("ms per step", (throughput.SteadyMsPerStep is { } ms ? $"{ms:F2} wall clock after the warm-up; " : "") +
                $"{Mean(5):F2} inside the coordinator ({(warm is null ? "mean over every step" : "mean after the warm-up")}): " +
                $"trunk fwd {Mean(0):F2}, towers fwd {Mean(1):F2}, loss {Mean(2):F2}, towers bwd {Mean(3):F2}, trunk bwd {Mean(4):F2}");
        }
        if (logDir is not null) Row("tensorboard", Path.GetFullPath(logDir));
        return new Panel(table).Header($" {Markup.Escape(spec.Name)} ");
    }

    public void Dispose() => tensorboard?.Dispose();
}
