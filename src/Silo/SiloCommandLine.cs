namespace Orchestrator.Silo;

/// <summary>
/// The silo's command line: switches that each map to a configuration key (also settable as NAME__KEY environment
/// variables), and <c>--Section:Key</c> for any other key the silo reads. Parsed strictly, so that a typo stops the
/// silo with a hint instead of starting one with defaults (<c>--devcies cuda:0</c> once started a CPU silo).
/// </summary>
static class SiloCommandLine
{
    public static readonly Dictionary<string, string> Switches = new(StringComparer.OrdinalIgnoreCase)
    {
        ["--devices"] = "Silo:Devices",
        ["--name"] = "Silo:Name",
        ["--silo-port"] = "Silo:SiloPort",
        ["--gateway-port"] = "Silo:GatewayPort",
        ["--advertised-ip"] = "Silo:AdvertisedIP",
        ["--listen-any"] = "Silo:ListenOnAnyAddress",
        ["--dashboard-port"] = "Silo:DashboardPort",
        ["--data-channel-port"] = "Silo:DataChannelPort",
        ["--primary-port"] = "Cluster:PrimarySiloPort",
        ["--membership"] = "Cluster:Membership",
        ["--redis"] = "Cluster:Redis",
        ["--cluster-id"] = "Cluster:ClusterId",
        ["--service-id"] = "Cluster:ServiceId",
        ["--max-message-mb"] = "Cluster:MaxMessageMB",
        ["--log-file"] = "Logging:File",
        ["--parent-pid"] = "Silo:ParentProcessId",
    };

    /// <summary>Whether the command line asks for <see cref="Help"/>.</summary>
    public static bool AsksForHelp(IReadOnlyList<string> args) => args.Contains("--help") || args.Contains("-h");

    /// <summary>
    /// The configuration keys and values the command line sets, the last source of configuration (after appsettings.json
    /// and the environment). Each option is a switch or <c>--Section:Key</c> naming a key of
    /// <see cref="SiloConfigurationKeys"/>, followed by its value or with <c>=VALUE</c>; anything else is an
    /// <see cref="ArgumentException"/> that names it, with the nearest option when one is close.
    /// </summary>
    public static Dictionary<string, string?> Parse(IReadOnlyList<string> args)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < args.Count; i++)
        {
            var argument = args[i];
            if (!argument.StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{argument}': options are --NAME VALUE or --NAME=VALUE (--help lists them).");
            int equals = argument.IndexOf('=');
            var option = equals < 0 ? argument : argument[..equals];
            var key = KeyOf(option);
            if (equals >= 0)
                settings[key] = argument[(equals + 1)..];
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                settings[key] = args[++i];
            else
                throw new ArgumentException($"option '{option}' needs a value ({key}).");
        }
        return settings;
    }

    static string KeyOf(string option)
    {
        if (Switches.TryGetValue(option, out var key)) return key;
        if (SiloConfigurationKeys.IsKnown(option[2..])) return option[2..];
        var options = Switches.Keys.Concat(SiloConfigurationKeys.Known.Select(k => $"--{k}"));
        throw new ArgumentException(NearestName.Of(option, options) is { } nearest
            ? $"unknown option '{option}'; did you mean '{nearest}'?"
            : $"unknown option '{option}' (--help lists the options).");
    }

    public const string Help = """
        orchestrator silo: hosts worker grains for the devices it owns and joins a cluster.

          --devices LIST         devices this silo owns: cpu, or cuda:0,cuda:1 (Silo:Devices, default cpu)
          --name NAME            silo name, unique in the cluster (Silo:Name, default MACHINE-SILOPORT)
          --silo-port PORT       silo-to-silo port (Silo:SiloPort, default 11111)
          --gateway-port PORT    port clients connect to (Silo:GatewayPort, default 30000)
          --membership KIND      localhost (one machine, default) or redis (Cluster:Membership)
          --redis CONNECTION     redis membership: host:port[,password=SECRET] (Cluster:Redis)
          --advertised-ip IP     redis membership: address others reach this silo at (Silo:AdvertisedIP,
                                 default the host's first non-loopback IPv4 address)
          --listen-any true      redis membership: listen on 0.0.0.0, not just the advertised IP (Silo:ListenOnAnyAddress)
          --data-channel-port P  port of the TCP data channel for tensors between GPU silos (Silo:DataChannelPort,
                                 default 0: a free port, advertised in the silo metadata)
          --primary-port PORT    localhost membership: silo port of the primary silo (Cluster:PrimarySiloPort, default 11111)
          --cluster-id ID        (Cluster:ClusterId, default orchestrator)
          --service-id ID        (Cluster:ServiceId, default orchestrator)
          --max-message-mb MB    largest Orleans message; tensors sent through messages must fit (Cluster:MaxMessageMB, default 100)
          --dashboard-port PORT  serve the Orleans dashboard over HTTP on this port (Silo:DashboardPort, default 0: off)
          --log-file PATH        also write logs (JSON, rolled daily) to PATH (Logging:File)
          --parent-pid PID       stop when process PID exits (Silo:ParentProcessId, default 0: never); the client sets it
                                 for the silo processes of its local cluster (train --local-processes)
          --version              print the version, commit, TorchSharp and libtorch, and exit
          --help, -h             print this help and exit

        Every key can also come from the environment: Silo__Devices=cuda:0, Cluster__Redis=..., Logging__File=...
        and from the command line as --Section:Key VALUE (or =VALUE): --Silo:PathRoots:0 DIR, --Silo:MaxJobMemoryMB MB,
        --Cluster:RedisConnectTimeoutSeconds S, --Serilog:MinimumLevel:Default Debug (docs/deploy.md lists every key).
        The command line wins over the environment, which wins over appsettings.json. An option the silo does not know
        stops it (exit code 2) with the nearest known one.
        The cluster secret has no switch, so that it never shows in a process list: give it as Cluster__Secret (at least
        16 bytes, the same on every silo; `openssl rand -hex 32` makes one). Required with redis membership; localhost
        membership without one uses a development key that protects nothing.

        TLS for silo-to-silo and client traffic (docs/deploy.md, "Securing a cluster") has no switches: set it in
        appsettings.json or the environment, which keeps the password off the command line:
          Cluster__Tls__Enabled=true                 off by default
          Cluster__Tls__Certificate=FILE             this silo's certificate and key: PFX, or PEM (key inside or in Cluster__Tls__Key)
          Cluster__Tls__Password=SECRET              the PFX's (or encrypted PEM key's) password
          Cluster__Tls__TrustedCA=FILE               PEM of the CA that peers' certificates must chain to
          Cluster__Tls__TrustedThumbprints__0=SHA256 and/or the only peer certificates accepted
          Cluster__Tls__RequireClientCertificate=false  also accept connections without a certificate, on the silo
                                                        port too (default true: mutual TLS)
        """;
}
