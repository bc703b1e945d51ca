using Orchestrator.Grains;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator train`: starts the job on the coordinator grain, steps it with a live progress line, prints a summary.</summary>
public sealed class TrainCommand : AsyncCommand<TrainSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TrainSettings settings, CancellationToken cancellation)
    {
        var spec = settings.ToJobSpec().Validate();
        var gateways = settings.ConfiguredGateways;
        // An embedded silo's messages must fit the largest slice the job could send (all groups on one worker).
        var options = settings.ToOptions(gateways);
        if (gateways.Count == 0)
            options.MaxMessageMB = (int)Math.Clamp(Math.Max(settings.MaxMessageMB, (spec.SliceBytes(spec.Shape.Groups) >> 20) + 2), 1, 2047);
        await using var connection = gateways.Count > 0
            ? await ClusterConnection.ConnectAsync(options, settings.Verbose)
            : await ClusterConnection.StartEmbeddedAsync(options, settings.LocalDevices, settings.LocalSilos, settings.Verbose);

        var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec, settings.Resume);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(spec.Name)}[/] on {Markup.Escape(connection.Description)}: " +
            $"{status.Workers.Length} worker(s), {spec.Shape.Groups} groups, batch {spec.BatchSize}, {spec.DType}, {spec.Steps} steps");
        var report = new TrainingReport(spec, settings.LogDir, status.StepsDone);
        int remaining = (int)Math.Max(0, spec.Steps - status.StepsDone);
        if (settings.Resume) AnsiConsole.MarkupLine($"resumed from the checkpoint at step {status.StepsDone}");
        try
        {
            if (AnsiConsole.Profile.Capabilities.Interactive)
                await AnsiConsole.Progress().AutoClear(false)
                    .Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask(report.Line(), maxValue: Math.Max(remaining, 1));
                        await Run(coordinator, report, remaining, () => task.Description(report.Line()).Increment(1), cancellation);
                    });
            else
            {
                int every = Math.Max(1, remaining / 10);
                await Run(coordinator, report, remaining, () =>
                {
                    if (report.Steps.Count % every == 0 || report.Steps.Count == remaining) Console.WriteLine(report.Line());
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

    static async Task Run(ICoordinatorGrain coordinator, TrainingReport report, int steps, Action afterStep, CancellationToken cancellation)
    {
        for (int i = 0; i < steps && !cancellation.IsCancellationRequested; i++)
        {
            report.Add(await coordinator.StepAsync());
            afterStep();
        }
    }
}
