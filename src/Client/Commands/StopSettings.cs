using System.ComponentModel;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>The job `stop` stops, and whether it may drop the progress since the last checkpoint.</summary>
public sealed class StopSettings : ConnectionSettings
{
    [CommandArgument(0, "<JOB>")]
    [Description("Name of the job to stop.")]
    public string Job { get; init; } = "";

    [CommandOption("--discard")]
    [Description("Stop without saving a checkpoint first (the steps since the last checkpoint are lost). Without it, a running job with a checkpoint directory is checkpointed, and a failed save keeps it running.")]
    public bool Discard { get; init; }
}
