using Orchestrator.Grains;
using Orchestrator.Grains.Observability;
using Orchestrator.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator train`: starts the job on the coordinator grain, steps it with a live progress line, prints a summary.</summary>
public sealed class TrainCommand : AsyncCommand<TrainSettings>
{
    /// <summary>How long one step may spend getting through a silo failure: membership declaring it dead, then a resume.</summary>
    static readonly TimeSpan FailurePatience = TimeSpan.FromMinutes(3);

    public override async Task<int> ExecuteAsync(CommandContext context, TrainSettings settings, CancellationToken cancellation)
    {
        var spec = settings.ToJobSpec().Validate();
        var options = settings.ToOptions(settings.ConfiguredGateways);
        // An embedded silo's messages must fit the largest slice the job could send (all groups on one worker).
        if (!settings.HasCluster)
            options.MaxMessageMB = (int)Math.Clamp(Math.Max(settings.MaxMessageMB, (spec.SliceBytes(spec.Shape.Groups) >> 20) + 2), 1, 2047);
        await using var connection = settings.HasCluster
            ? await ClusterConnection.ConnectAsync(options, settings.Verbose)
            : await ClusterConnection.StartEmbeddedAsync(options, settings.LocalDevices, settings.LocalSilos, settings.Verbose, settings.LocalProcesses);

        await using var session = await JobSession.StartAsync(connection.Grains, spec, settings.Resume, FailurePatience,
            notice => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(notice)}[/]"));
        var status = session.Status;
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(spec.Name)}[/] on {Markup.Escape(connection.Description)}: " +
            $"{status.Workers.Length} worker(s), {spec.Shape.Groups} groups, batch {spec.BatchSize}, {spec.DType}, {spec.Steps} steps");
        var report = new TrainingReport(spec, settings.LogDir, status.StepsDone);
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
                        await Run(session, spec, report, exchanged, m => task.Description(report.Line()).Value = m.Step + 1, cancellation);
                    });
            else
            {
                int every = Math.Max(1, remaining / 10);
                await Run(session, spec, report, exchanged, m =>
                {
                    if (report.Steps.Count % every == 0 || m.Step + 1 == spec.Steps) Console.WriteLine(report.Line());
                }, cancellation);
            }
            AnsiConsole.Write(report.Summary(await session.Coordinator.GetStatusAsync()));
            return 0;
        }
        finally
        {
            await session.Coordinator.StopAsync();
        }
    }

    /// <summary>
    /// Steps until the job's last step is done, or early stopping ends it; a job that recovers from lost workers repeats
    /// a few steps.
    /// </summary>
    static async Task Run(JobSession session, JobSpec spec, TrainingReport report, long exchanged, Action<StepMetrics> afterStep,
        CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested && (report.Steps.Count == 0 ? report.FirstStep : report.Steps[^1].Step + 1) < spec.Steps)
        {
            var metrics = await session.StepAsync();
            report.Add(metrics);
            TrainingMetrics.Record(spec.Name, metrics, exchanged);   // the "Orchestrator" meter of this process
            afterStep(metrics);
            if (metrics.Eval is { StopsEarly: true }) break;   // the coordinator finished the job (early stopping)
        }
    }
}
