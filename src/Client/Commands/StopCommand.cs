using Orchestrator.Connection;
using Orchestrator.Grains;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator stop JOB`: checkpoints a job of the cluster (unless --discard) and releases its devices, whoever started it.</summary>
public sealed class StopCommand : AsyncCommand<StopSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, StopSettings settings, CancellationToken cancellation)
    {
        await using var connection = await ClusterConnection.ConnectAsync(settings.ExistingClusterOptions(), settings.Verbose);
        var jobs = await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetJobsAsync();
        if (!jobs.Contains(settings.Job))
        {
            AnsiConsole.MarkupLineInterpolated($"[red]no job '{settings.Job}' on this cluster[/]; it has: {(jobs.Length == 0 ? "none" : string.Join(", ", jobs))}");
            return 1;
        }
        var stopped = await connection.Grains.GetGrain<ICoordinatorGrain>(settings.Job).StopAsync(settings.Discard);
        var saved = stopped.LastCheckpointStep is { } step ? $"; its newest checkpoint is at step {step}" : "; it has no checkpoint";
        AnsiConsole.MarkupLineInterpolated($"stopped job '{stopped.Name}' at step {stopped.StepsDone} of {stopped.StepsPlanned}{saved}");
        return 0;
    }
}
