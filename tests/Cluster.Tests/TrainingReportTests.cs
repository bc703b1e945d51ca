using System.Runtime.CompilerServices;
using Orchestrator.Client;
using Orchestrator.Grains;
using Orchestrator.Training;
using Spectre.Console;
using Spectre.Console.Rendering;
using static Orchestrator.Cluster.Tests.EventFileRecords;

namespace Orchestrator.Cluster.Tests;

/// <summary>What the client shows of a run (live line, summary) and logs to TensorBoard, fed steps on a clock the test moves.</summary>
public sealed class TrainingReportTests : IDisposable
{
    readonly ScratchDirectory scratch = new();
    string LogDir => scratch.Root;
    double now = 50;

    public void Dispose() => scratch.Dispose();

    static readonly JobSpec Spec = new()
    {
        Name = "report-test", Steps = 1000, BatchSize = 64, Loss = new LossSpec { Kind = LossKind.Bce },
        Shape = new ModelShape { Groups = 2 },
    };

    static readonly EvalMetrics Eval = new(Step: 30, Samples: 512, Loss: 0.3125, Groups: [new GroupEval(0, 0.25, 0.875), new GroupEval(1, 0.375, 0.625)])
    {
        Best = true, BestLoss = 0.3125, BestStep = 30,
    };

    /// <summary>Step <paramref name="step"/> (0-based) of 64 samples: warm-up steps take 1 s and 100 ms in the coordinator, later ones 0.25 s and 10 ms.</summary>
    StepMetrics Step(long step, bool warmup)
    {
        now += warmup ? 1 : 0.25;
        double ms = warmup ? 100 : 10;
        return new StepMetrics(step, Loss: 1.0 / (step + 1), BatchSize: 64, ms / 10, ms / 5, ms / 10, ms / 5, ms * 2 / 5, ms,
            LearningRate: 0.005, GradientNorm: 2.5, Eval: step == 29 ? Eval : null);
    }

    TrainingReport Report() => new(Spec, LogDir, clock: () => now);

    static string Render(IRenderable panel)
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 400;
        console.Write(panel);
        return text.ToString();
    }

    static JobStatus Finished(long steps) =>
        new("report-test", JobState.Finished, steps, 1000, null, [new WorkerInfo("w0", "silo-a", "cpu", 0, 2, Grains.Transport.TensorPayloadKind.Message)], null, "silo-a");

    [Fact]
    public void The_live_line_shows_loss_lr_the_last_evaluation_the_windowed_rate_and_the_ETA()
    {
        using var report = Report();
        Assert.Equal("starting report-test", report.Line());
        int warmup = Throughput.WarmupFor(Spec.Steps);   // 100
        for (int i = 0; i < warmup + 60; i++) report.Add(Step(i, warmup: i < warmup));
        // The last 50 steps took 0.25 s each: 256 samples/s, and 840 steps to go at 0.25 s are 210 s.
        Assert.Equal("step 160/1000  loss 0.00625  val@30 0.3125 (best)  lr 0.005  256 samples/s  ETA 00:03:30", report.Line());
        Assert.Equal(Eval, report.LastEval);
    }

    [Fact]
    public void The_summary_reports_the_warm_up_apart_in_wall_time_rate_and_the_coordinator_phases()
    {
        using var report = Report();
        int warmup = Throughput.WarmupFor(Spec.Steps);
        for (int i = 0; i < warmup + 200; i++) report.Add(Step(i, warmup: i < warmup));
        string summary = Render(report.Summary(Finished(300)));

        Assert.Contains("300 of 1000", summary);
        Assert.Contains("silo-a/cpu  groups [0, 2)  message", summary);
        Assert.Contains("val@30 0.3125 (best) on 512 held-out samples after step 30", summary);
        Assert.Contains("group 0: 0.25  AUC 0.8750", summary);
        Assert.Contains("group 1: 0.375  AUC 0.6250", summary);
        Assert.Contains("1 -> 0.0033333 (300.0x lower)", summary);
        Assert.Contains("150.0 s for 300 steps, of which the first 100 (warm-up) took 100.0 s", summary);
        Assert.Contains("256 after the warm-up; 128 over the whole run", summary);
        // The steady steps' 10 ms, not the mean over all 300 steps (40 ms) that the warm-up's 100 ms steps would make.
        Assert.Contains("250.00 wall clock after the warm-up; 10.00 inside the coordinator (mean after the warm-up): " +
                        "trunk fwd 1.00, towers fwd 2.00, loss 1.00, towers bwd 2.00, trunk bwd 4.00", summary);
        Assert.Contains(Path.GetFullPath(LogDir), summary);
    }

    [Fact]
    public void A_run_no_longer_than_its_warm_up_reports_means_over_every_step()
    {
        using var report = Report();
        for (int i = 0; i < 3; i++) report.Add(Step(i, warmup: true));
        string summary = Render(report.Summary(Finished(3)));
        Assert.Contains("too short for a warm-up apart", summary);
        Assert.Contains("100.00 inside the coordinator (mean over every step)", summary);
    }

    [Fact]
    public void The_event_file_holds_loss_lr_gradient_norm_evaluations_and_hparams()
    {
        using (var report = Report())
        {
            for (int i = 0; i < 40; i++) report.Add(Step(i, warmup: i < 10));
            report.Summary(Finished(40));
        }
        var values = Values(Directory.GetFiles(LogDir, "events.out.tfevents.*").Single());
        float Scalar(string tag, long step) => values.Single(v => v.Tag == tag && v.Step == step).Scalar!.Value;

        Assert.Equal(40, values.Count(v => v.Tag == "train/loss"));
        Assert.Equal(1f / 8, Scalar("train/loss", 7));
        Assert.Equal(0.005f, Scalar("train/lr", 39));
        Assert.Equal(2.5f, Scalar("train/grad_norm", 39));
        Assert.Equal(40, values.Count(v => v.Tag == "train/samples_per_second"));
        Assert.Equal(0.3125f, Scalar("val/loss", 29));
        Assert.Equal(0.25f, Scalar("val/group0/loss", 29));
        Assert.Equal(0.875f, Scalar("val/group0/auc", 29));
        Assert.Equal(0.375f, Scalar("val/group1/loss", 29));
        Assert.Equal(0.625f, Scalar("val/group1/auc", 29));
        Assert.Single(values, v => v.Tag.StartsWith("val/loss", StringComparison.Ordinal));
        Assert.Single(values, v => v.Tag == "_hparams_/session_start_info");
        Assert.Single(values, v => v.Tag == "_hparams_/session_end_info");
        Assert.Single(values, v => v.Tag == "job/spec");
    }

    /// <summary>
    /// 20,000 steps through the report: it keeps the last step's metrics and running sums, never every step's. Each
    /// step's metrics are made and handed over in a method of their own, so only the report can keep them alive.
    /// </summary>
    [Fact]
    public void The_report_keeps_no_step_but_the_last_however_long_the_run()
    {
        var spec = Spec with { Steps = 20_000 };
        using var report = new TrainingReport(spec, logDir: null, clock: () => now);
        var steps = new WeakReference[spec.Steps];
        for (int i = 0; i < steps.Length; i++) steps[i] = AddStep(report, i);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.Equal([spec.Steps - 1], Enumerable.Range(0, steps.Length).Where(i => steps[i].IsAlive));
        Assert.Equal(spec.Steps, report.StepsTaken);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    WeakReference AddStep(TrainingReport report, int step)
    {
        var metrics = Step(step, warmup: false);
        report.Add(metrics);
        return new WeakReference(metrics);
    }
}
