using System.ComponentModel;
using Orchestrator.Grains.Hosting;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>Options of every command that talks to a cluster.</summary>
public class ConnectionSettings : CommandSettings
{
    public const string GatewaysVariable = "ORCHESTRATOR_GATEWAYS";

    [CommandOption("-g|--gateway <HOST:PORT>")]
    [Description("Gateway of the cluster, host:port; repeat or comma-separate for several. Default: $ORCHESTRATOR_GATEWAYS. Without any, train starts a silo in this process and status asks localhost:30000.")]
    public string[] Gateways { get; init; } = [];

    [CommandOption("--cluster-id <ID>")]
    [Description("Orleans cluster id of the cluster (and of the embedded silo).")]
    [DefaultValue("orchestrator")]
    public string ClusterId { get; init; } = "orchestrator";

    [CommandOption("--service-id <ID>")]
    [Description("Orleans service id of the cluster (and of the embedded silo).")]
    [DefaultValue("orchestrator")]
    public string ServiceId { get; init; } = "orchestrator";

    [CommandOption("--max-message-mb <MB>")]
    [Description("Largest Orleans message this client accepts; must match the silos' Cluster:MaxMessageMB.")]
    [DefaultValue(100)]
    public int MaxMessageMB { get; init; } = 100;

    [CommandOption("-v|--verbose")]
    [Description("Log Orleans and grain activity (information level) to the console.")]
    public bool Verbose { get; init; }

    /// <summary>Gateways from the option, else from the environment; empty when none is configured.</summary>
    public List<string> ConfiguredGateways =>
        (Gateways.Length > 0 ? Gateways : [Environment.GetEnvironmentVariable(GatewaysVariable) ?? ""])
        .SelectMany(g => g.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .ToList();

    public ClusterConnectionOptions ToOptions(IEnumerable<string> gateways) => new()
    {
        ClusterId = ClusterId,
        ServiceId = ServiceId,
        MaxMessageMB = MaxMessageMB,
        Gateways = [.. gateways],
    };
}
