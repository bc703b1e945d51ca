namespace Orchestrator.Grains.Hosting;

/// <summary>
/// How silos and clients find each other, bound from the "Cluster" configuration section. Membership "localhost"
/// is the development cluster on one machine (every silo joins the one on PrimarySiloPort); production membership
/// (Redis) becomes another value here.
/// </summary>
public sealed class ClusterConnectionOptions
{
    public const string Section = "Cluster";

    public string Membership { get; set; } = "localhost";
    public string ClusterId { get; set; } = "orchestrator";
    public string ServiceId { get; set; } = "orchestrator";
    /// <summary>Localhost membership: the silo port of the primary silo.</summary>
    public int PrimarySiloPort { get; set; } = 11111;
    /// <summary>Gateways a client connects to, "host:port".</summary>
    public List<string> Gateways { get; set; } = [];
    /// <summary>Largest Orleans message body; tensors exchanged through messages must fit. Same on silos and clients.</summary>
    public int MaxMessageMB { get; set; } = 100;
    /// <summary>How long a grain call may take before it times out (a step of a big job can take a while).</summary>
    public int ResponseTimeoutSeconds { get; set; } = 600;

    public int MaxMessageBytes => MaxMessageMB is > 0 and <= 2047
        ? MaxMessageMB << 20
        : throw new ArgumentOutOfRangeException(nameof(MaxMessageMB), $"Cluster:MaxMessageMB must be 1..2047; got {MaxMessageMB}.");

    public TimeSpan ResponseTimeout => TimeSpan.FromSeconds(ResponseTimeoutSeconds);
}
