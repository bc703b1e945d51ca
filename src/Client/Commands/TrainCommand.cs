using Orchestrator.Grains;
using Orchestrator.Grains.Observability;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator train`: starts the job on the coordinator grain, steps it with a live progress line, prints a summary.</summary>
public sealed class TrainCommand : AsyncCommand<TrainSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TrainSettings settings, CancellationToken cancellation)
    {
        var spec = settings.ToJobSpec().Validate();
        var options = settings.ToOptions(settings.ConfiguredGateways);
        // An embedded silo's messages must fit the largest slice the job could send (all groups on one worker).
        if (!settings.HasCluster)
            options.MaxMessageMB = (int)Math.Clamp(Math.Max(settings.MaxMessageMB, (spec.SliceBytes(spec.Shape.Groups) >> 20) + 2), 1, 2047);
        await using var connection = settings.HasCluster
            ? await ClusterConnection.ConnectAsync(options, settings.Verbose)
            : await ClusterConnection.StartEmbeddedAsync(options, settings.LocalDevices, settings.LocalSilos, settings.Verbose);

        var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(spec.Name)}[/] on {Markup.Escape(connection.Description)}: " +
            $"{status.Workers.Length} worker(s), {spec.Shape.Groups} groups, batch {spec.BatchSize}, {spec.DType}, {spec.Steps} steps");
        var report = new TrainingReport(spec, settings.LogDir);
        long exchanged = TrainingMetrics.ExchangedBytes(spec, status);
        try
        {
            if (AnsiConsole.Profile.Capabilities.Interactive)
                await AnsiConsole.Progress().AutoClear(false)
                    .Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask(report.Line(), maxValue: spec.Steps);
                        await Run(coordinator, spec.Name, report, exchanged, spec.Steps, () => task.Description(report.Line()).Increment(1), cancellation);
                    });
            else
            {
                int every = Math.Max(1, spec.Steps / 10);
                await Run(coordinator, spec.Name, report, exchanged, spec.Steps, () =>
                {
                    if (report.Steps.Count % every == 0 || report.Steps.Count == spec.Steps) Console.WriteLine(report.Line());
                }, cancellation);
            }
            AnsiConsole.Write(report.Summary(await coordinator.GetStatusAsync()));
            return 0;
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    static async Task Run(ICoordinatorGrain coordinator, string job, TrainingReport report, long exchanged, int steps, Action afterStep, CancellationToken cancellation)
    {
        for (int i = 0; i < steps && !cancellation.IsCancellationRequested; i++)
        {
            var metrics = await coordinator.StepAsync();
            report.Add(metrics);
            TrainingMetrics.Record(job, metrics, exchanged);   // the "Orchestrator" meter of this process
            afterStep();
        }
    }
}
