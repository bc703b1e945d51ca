namespace Orchestrator.Grains.Hosting;

/// <summary>This silo, bound from the "Silo" configuration section.</summary>
public sealed class SiloHostOptions
{
    public const string Section = "Silo";

    /// <summary>Unique in the cluster; worker keys name it. Default: "{machine}-{SiloPort}".</summary>
    public string? Name { get; set; }
    /// <summary>Devices this silo owns: "cpu" or "cuda:0,cuda:1".</summary>
    public string Devices { get; set; } = "cpu";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;

    public string SiloName => string.IsNullOrWhiteSpace(Name) ? $"{Environment.MachineName}-{SiloPort}" : Name;
}
