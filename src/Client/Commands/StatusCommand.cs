using Orchestrator.Connection;
using Orchestrator.Grains;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>`orchestrator status`: the devices every silo advertises and the jobs started on the cluster.</summary>
public sealed class StatusCommand : AsyncCommand<ConnectionSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConnectionSettings settings, CancellationToken cancellation)
    {
        await using var connection = await ClusterConnection.ConnectAsync(settings.ExistingClusterOptions(), settings.Verbose);
        var cluster = connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key);

        var devices = new Table().Title("devices").AddColumns("silo", "device", "address");
        foreach (var d in await cluster.GetDevicesAsync()) devices.AddRow(Markup.Escape(d.Silo), d.Device, Markup.Escape(d.Address));
        AnsiConsole.Write(devices);

        var jobs = new Table().Title("jobs").AddColumns("job", "state", "steps", "last loss", "workers", "coordinator", "note");
        foreach (var name in await cluster.GetJobsAsync())
        {
            var s = await connection.Grains.GetGrain<ICoordinatorGrain>(name).GetStatusAsync();
            jobs.AddRow(Markup.Escape(s.Name), s.State.ToString(), $"{s.StepsDone}/{s.StepsPlanned}", s.LastLoss?.ToString("G5") ?? "-",
                Markup.Escape(string.Join(", ", s.Workers.Select(w => $"{w.Silo}/{w.Device} [{w.FirstGroup}, {w.FirstGroup + w.GroupCount})"))),
                Markup.Escape(s.CoordinatorSilo), Markup.Escape(s.Error ?? ""));
        }
        AnsiConsole.Write(jobs);
        return 0;
    }
}
