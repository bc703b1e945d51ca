using Orchestrator.Grains;
using Orchestrator.Training;
using Spectre.Console;
using TorchSharp.Modules;
using static TorchSharp.torch.utils.tensorboard;

namespace Orchestrator.Client;

/// <summary>
/// Per-step metrics of a run that starts at step <paramref name="firstStep"/> (0, or the step a resumed job continues
/// from): the live line's text, TensorBoard scalars and the final summary.
/// </summary>
public sealed class TrainingReport(JobSpec spec, string? logDir, long firstStep = 0)
{
    readonly List<StepMetrics> steps = [];
    readonly SummaryWriter? tensorboard = logDir is null ? null : SummaryWriter(logDir);   // writes each event straight to its file
    readonly PhaseTimer wall = new();

    public IReadOnlyList<StepMetrics> Steps => steps;
    public long FirstStep => firstStep;
    /// <summary>The step the job trains next (a recovered job may have rewound to its checkpoint).</summary>
    public long NextStep => steps.Count == 0 ? firstStep : steps[^1].Step + 1;

    public void Add(StepMetrics metrics)
    {
        steps.Add(metrics);
        tensorboard?.add_scalar("train/loss", (float)metrics.Loss, (int)metrics.Step);
        tensorboard?.add_scalar("train/samples_per_second", (float)metrics.SamplesPerSecond, (int)metrics.Step);
    }

    /// <summary>"step 120/1000  loss 0.01234  13,210 samples/s  ETA 00:00:07"</summary>
    public string Line()
    {
        if (steps.Count == 0) return $"starting {spec.Name}";
        var last = steps[^1];
        var recent = steps.TakeLast(20).ToList();
        double msPerStep = recent.Average(s => s.TotalMs);
        long done = last.Step + 1;   // not a count: a recovered job repeats the steps since its checkpoint
        var eta = TimeSpan.FromMilliseconds(msPerStep * (spec.Steps - done));
        return $"step {done}/{spec.Steps}  loss {last.Loss:G4}  {recent.Average(s => s.SamplesPerSecond):N0} samples/s  ETA {eta:hh\\:mm\\:ss}";
    }

    public Panel Summary(JobStatus status)
    {
        var table = new Grid().AddColumn(new GridColumn().PadRight(2)).AddColumn();
        void Row(string what, string value) => table.AddRow(new Markup($"[bold]{what}[/]"), new Text(value));
        Row("workers", string.Join("\n", status.Workers.Select(w =>
            $"{w.Silo}/{w.Device}  groups [{w.FirstGroup}, {w.FirstGroup + w.GroupCount})  {w.Transport}")));
        Row("coordinator", status.CoordinatorSilo);
        Row("steps", $"{status.StepsDone} of {spec.Steps}" + (firstStep > 0 ? $" (resumed at step {firstStep})" : ""));
        if (status.Recoveries > 0) Row("recoveries", $"{status.Recoveries}: lost workers were replaced and training went on from the last checkpoint");
        if (status.LastCheckpointStep is { } saved) Row("checkpoint", $"step {saved} in {spec.Checkpoint.Directory}");
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
}
