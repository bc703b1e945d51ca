using Spectre.Console;
using System.ComponentModel;
using Orchestrator.Grains.Hosting;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>Options of every command that talks to a cluster.</summary>
public class ConnectionSettings : CommandSettings
{
    public const string GatewaysVariable = "ORCHESTRATOR_GATEWAYS";
    public const string RedisVariable = "ORCHESTRATOR_REDIS";
    public const string TlsCertificateVariable = "ORCHESTRATOR_TLS_CERTIFICATE";
    public const string TlsKeyVariable = "ORCHESTRATOR_TLS_KEY";
    public const string TlsPasswordVariable = "ORCHESTRATOR_TLS_PASSWORD";
    public const string TlsCAVariable = "ORCHESTRATOR_TLS_CA";
    public const string TlsThumbprintsVariable = "ORCHESTRATOR_TLS_THUMBPRINTS";

    [CommandOption("-g|--gateway <HOST:PORT>")]
    [Description("Gateway of the cluster, host:port; repeat or comma-separate for several. Default: $ORCHESTRATOR_GATEWAYS. Ignored when --redis is given; given here, it wins over $ORCHESTRATOR_REDIS. Without any, train starts a silo in this process and status and stop ask localhost:30000.")]
    public string[] Gateways { get; init; } = [];

    [CommandOption("--redis <CONNECTION>")]
    [Description("Redis membership: find the cluster's gateways in this Redis: host:port or host:port,password=SECRET (the silos' Cluster:Redis). Default: $ORCHESTRATOR_REDIS, unless --gateway is given. Takes precedence over gateways.")]
    public string? Redis { get; init; }

    [CommandOption("--cluster-id <ID>")]
    [Description("Orleans cluster id of the cluster (and of the embedded silo).")]
    [DefaultValue("orchestrator")]
    public string ClusterId { get; init; } = "orchestrator";

    [CommandOption("--service-id <ID>")]
    [Description("Orleans service id of the cluster (and of the embedded silo).")]
    [DefaultValue("orchestrator")]
    public string ServiceId { get; init; } = "orchestrator";

    [CommandOption("--connect-timeout <SECONDS>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("How long connecting to the cluster may take before the command fails, 1 to 3600 seconds.")]
    [DefaultValue(30)]
    public int ConnectTimeoutSeconds { get; init; } = 30;

    public const int MaxConnectTimeoutSeconds = 3600;

    /// <summary>The connection options' own checks; a command's settings add theirs after these.</summary>
    public override ValidationResult Validate() =>
        ConnectTimeoutSeconds is < 1 or > MaxConnectTimeoutSeconds
            ? ValidationResult.Error($"--connect-timeout must be 1 to {MaxConnectTimeoutSeconds} seconds; got {ConnectTimeoutSeconds}.")
            : ValidationResult.Success();

    [CommandOption("--max-message-mb <MB>"), TypeConverter(typeof(WholeNumberConverter))]
    [Description("Largest Orleans message this client accepts; must match the silos' Cluster:MaxMessageMB.")]
    [DefaultValue(100)]
    public int MaxMessageMB { get; init; } = 100;

    [CommandOption("--tls-certificate <FILE>")]
    [Description("TLS: this client's certificate and private key, a PFX or PEM file. Its password comes from $ORCHESTRATOR_TLS_PASSWORD, never an option. Default: $ORCHESTRATOR_TLS_CERTIFICATE. Any --tls option turns TLS on; without a certificate only silos with Cluster:Tls:RequireClientCertificate=false accept the client. An embedded silo and the silo processes train starts use the same settings.")]
    public string? TlsCertificate { get; init; }

    [CommandOption("--tls-key <FILE>")]
    [Description("TLS: the PEM private key of --tls-certificate, when it is not in that file. Default: $ORCHESTRATOR_TLS_KEY.")]
    public string? TlsKey { get; init; }

    [CommandOption("--tls-ca <FILE>")]
    [Description("TLS: PEM file of the CA certificate(s) the gateways' certificates must chain to (the silos' Cluster:Tls:TrustedCA). Default: $ORCHESTRATOR_TLS_CA.")]
    public string? TlsCA { get; init; }

    [CommandOption("--tls-thumbprint <SHA256>")]
    [Description("TLS: accept only gateway certificates with this SHA-256 (or SHA-1) fingerprint; repeat or comma-separate for several. With --tls-ca both must hold. Default: $ORCHESTRATOR_TLS_THUMBPRINTS.")]
    public string[] TlsThumbprints { get; init; } = [];

    [CommandOption("-v|--verbose")]
    [Description("Log Orleans and grain activity (information level) to the console.")]
    public bool Verbose { get; init; }

    /// <summary>Gateways from the option, else from the environment; empty when none is configured.</summary>
    public List<string> ConfiguredGateways =>
        (Gateways.Length > 0 ? Gateways : [Environment.GetEnvironmentVariable(GatewaysVariable) ?? ""])
        .SelectMany(g => g.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .ToList();

    /// <summary>
    /// The Redis connection string: from the option, else from the environment unless gateways were given on the command
    /// line (what the user typed wins over what the shell holds); null when none is configured.
    /// </summary>
    public string? ConfiguredRedis =>
        !string.IsNullOrWhiteSpace(Redis) ? Redis
        : Gateways.Length > 0 ? null
        : NullIfBlank(Environment.GetEnvironmentVariable(RedisVariable));

    /// <summary>Whether a cluster to connect to is configured (Redis or gateways); otherwise train starts an embedded silo.</summary>
    public bool HasCluster => ConfiguredRedis is not null || ConfiguredGateways.Count > 0;

    static string? NullIfBlank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    /// <summary>The configured cluster, or else the development cluster's gateway on this machine (commands that need a running cluster).</summary>
    public ClusterConnectionOptions ExistingClusterOptions() =>
        ToOptions(ConfiguredGateways is { Count: > 0 } gateways ? gateways : ["localhost:30000"]);

    static string? OptionOrVariable(string? option, string variable) =>
        string.IsNullOrWhiteSpace(option) ? NullIfBlank(Environment.GetEnvironmentVariable(variable)) : option;

    /// <summary>
    /// TLS from the --tls options and their variables: on when any of them is given. A client certificate is required
    /// only when one is given, so that a client of silos that accept clients without one can go without.
    /// </summary>
    public ClusterTlsOptions ConfiguredTls()
    {
        var certificate = OptionOrVariable(TlsCertificate, TlsCertificateVariable);
        var key = OptionOrVariable(TlsKey, TlsKeyVariable);
        var authority = OptionOrVariable(TlsCA, TlsCAVariable);
        List<string> thumbprints = TlsThumbprints.Length > 0 ? [.. TlsThumbprints]
            : Environment.GetEnvironmentVariable(TlsThumbprintsVariable) is { Length: > 0 } pinned ? [pinned] : [];
        return new ClusterTlsOptions
        {
            Enabled = certificate is not null || key is not null || authority is not null || thumbprints.Count > 0,
            Certificate = certificate,
            Key = key,
            Password = NullIfBlank(Environment.GetEnvironmentVariable(TlsPasswordVariable)),
            RequireClientCertificate = certificate is not null,
            TrustedCA = authority,
            TrustedThumbprints = thumbprints,
        };
    }

    public ClusterConnectionOptions ToOptions(IEnumerable<string> gateways) => new()
    {
        Membership = ConfiguredRedis is null ? ClusterConnectionOptions.Localhost : ClusterConnectionOptions.RedisMembership,
        Redis = ConfiguredRedis,
        ClusterId = ClusterId,
        ServiceId = ServiceId,
        ConnectTimeoutSeconds = ConnectTimeoutSeconds,
        MaxMessageMB = MaxMessageMB,
        Gateways = [.. gateways],
        Tls = ConfiguredTls(),
    };
}
