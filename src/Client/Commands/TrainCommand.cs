using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Observability;
using Orchestrator.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>
/// `orchestrator train`: starts the job on the coordinator grain, steps it with a live progress line, prints a summary.
/// SIGINT, SIGTERM or SIGHUP (<see cref="StopSignals"/>) stops it at the next step boundary, checkpointed, and it exits
/// with 128 + the signal's number; a second signal aborts at once.
/// </summary>
public sealed class TrainCommand : AsyncCommand<TrainSettings>
{
    /// <summary>How long one step may spend getting through a silo failure: membership declaring it dead, then a resume.</summary>
    static readonly TimeSpan FailurePatience = TimeSpan.FromMinutes(3);

    public override async Task<int> ExecuteAsync(CommandContext context, TrainSettings settings, CancellationToken cancellation)
    {
        var spec = settings.Spec;
        if (settings.Resume && settings.HasCluster && settings.ResumedFrom() is null)
            AnsiConsole.MarkupLine("[yellow]" + Markup.Escape(
                $"--resume: no checkpoint of '{spec.Name}' is readable here under '{spec.Checkpoint.Directory}' (the cluster's silos read it), " +
                "so the job's settings come from the options given, as when it started: give every model option it was started with " +
                "(or its --spec); the coordinator refuses a model that differs from its checkpoint.") + "[/]");
        using var signals = new StopSignals((signal, again) =>
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(TrainInterruption.Received(signal, again, spec))}[/]"));
        var options = settings.ToOptions(settings.ConfiguredGateways);
        // An embedded silo's messages must fit the largest slice the job could send (all groups on one worker).
        if (!settings.HasCluster)
            options.MaxMessageMB = (int)Math.Clamp(Math.Max(settings.MaxMessageMB, (spec.SliceBytes(spec.Shape.Groups) >> 20) + 2), 1, 2047);
        var connection = settings.HasCluster
            ? await ClusterConnection.ConnectAsync(options, settings.Verbose)
            : await ClusterConnection.StartEmbeddedAsync(options, settings.LocalDevices, settings.LocalSilos, settings.Verbose, settings.LocalProcesses);
        bool aborted = false;
        int code;
        try
        {
            code = await Train(connection, settings, spec, signals);
        }
        catch (OperationCanceledException) when (signals.Aborting.IsCancellationRequested)
        {
            (aborted, code) = (true, signals.ExitCode);
        }
        finally
        {
            // After a second signal this stops waiting for the silos in this process, which would wait for the step in flight.
            await connection.StopAsync(signals.Aborting);
        }
        if (aborted)
        {
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(TrainInterruption.Aborted(settings, spec))}[/]");
            ImmediateExit.Now(code);   // the step in progress may still be running on a device thread of this process
        }
        return code;
    }

    /// <summary>
    /// Starts the job and steps it until it is done or <see cref="StopSignals.Stopping"/>; a job stopped early is
    /// checkpointed (when it has a directory) and the exit code is the signal's. Every call gives up when
    /// <see cref="StopSignals.Aborting"/> is cancelled, leaving the job as it is.
    /// </summary>
    static async Task<int> Train(ClusterConnection connection, TrainSettings settings, JobSpec spec, StopSignals signals)
    {
        var abort = signals.Aborting;
        await using var session = await JobSession.StartAsync(connection.Grains, spec, settings.Resume, FailurePatience,
            notice => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(notice)}[/]")).WaitAsync(abort);
        var status = session.Status;
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(spec.Name)}[/] on {Markup.Escape(connection.Description)}: " +
            $"{status.Workers.Length} worker(s), {spec.Shape.Groups} groups, batch {spec.BatchSize}, {Kernels.DTypeNames.Name(spec.DType)}, {spec.Steps} steps");
        using var report = new TrainingReport(spec, settings.LogDir, status.StepsDone);
        long exchanged = TrainingMetrics.ExchangedBytes(spec, status);
        int remaining = (int)Math.Max(0, spec.Steps - status.StepsDone);
        if (settings.Resume) AnsiConsole.MarkupLine($"resumed from the checkpoint at step {status.StepsDone}");
        if (status.CheckpointNote is { } note) AnsiConsole.MarkupLineInterpolated($"[yellow]{note}[/]");
        try
        {
            if (AnsiConsole.Profile.Capabilities.Interactive)
                await AnsiConsole.Progress().AutoClear(false)
                    .Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask(report.Line(), maxValue: spec.Steps);
                        task.Value = status.StepsDone;
                        await Run(session, spec, report, exchanged, m => task.Description(report.Line()).Value = m.Step + 1, signals);
                    });
            else
            {
                int every = Math.Max(1, remaining / 10);
                await Run(session, spec, report, exchanged, m =>
                {
                    if (report.StepsTaken % every == 0 || m.Step + 1 == spec.Steps) Console.WriteLine(report.Line());
                }, signals);
            }
            // A signal ends the loop early, and so does early stopping, which finishes the job.
            bool unfinished = signals.Stopping.IsCancellationRequested && report.NextStep < spec.Steps && report.LastEval?.StopsEarly != true;
            if (unfinished && spec.Checkpoint.Directory is not null) await session.Coordinator.CheckpointAsync().WaitAsync(abort);
            var final = await session.Coordinator.GetStatusAsync().WaitAsync(abort);
            AnsiConsole.Write(report.Summary(final));
            if (!unfinished) return 0;
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(TrainInterruption.Stopped(settings, spec, final, signals.First))}[/]");
            return signals.ExitCode;
        }
        finally
        {
            // Aborted, the job stays as it is: its lease (or the end of this process's silo) takes care of it.
            if (!abort.IsCancellationRequested) await session.Coordinator.StopAsync().WaitAsync(abort);
        }
    }

    /// <summary>
    /// Steps until the job's last step is done, early stopping ends it or a signal stops it; a job that recovers from
    /// lost workers repeats a few steps.
    /// </summary>
    static async Task Run(JobSession session, JobSpec spec, TrainingReport report, long exchanged, Action<StepMetrics> afterStep,
        StopSignals signals)
    {
        while (!signals.Stopping.IsCancellationRequested && report.NextStep < spec.Steps)
        {
            var metrics = await session.StepAsync().WaitAsync(signals.Aborting);
            report.Add(metrics);
            TrainingMetrics.Record(spec.Name, metrics, exchanged);   // the "Orchestrator" meter of this process
            afterStep(metrics);
            if (metrics.Eval is { StopsEarly: true }) break;   // the coordinator finished the job (early stopping)
        }
    }
}
