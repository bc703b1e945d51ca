using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Hosting;
using Serilog;
using Serilog.Events;

namespace Orchestrator.Connection;

/// <summary>A connection to a cluster: an Orleans client of remote gateways, or silos hosted in this process.</summary>
public sealed class ClusterConnection(IReadOnlyList<IHost> hosts, IGrainFactory grains, string description, IReadOnlyList<LocalSiloProcess>? processes = null)
    : IAsyncDisposable
{
    /// <summary>How long silo processes started beside the embedded silos may take to join.</summary>
    static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(120);

    public IGrainFactory Grains { get; } = grains;
    /// <summary>The silo host processes this connection started (none when it connected to a cluster).</summary>
    public IReadOnlyList<LocalSiloProcess> Processes { get; } = processes ?? [];
    public string Description { get; } = description;

    /// <summary>An Orleans client of the cluster behind <paramref name="options"/>' gateways (static, or read from Redis).</summary>
    public static async Task<ClusterConnection> ConnectAsync(ClusterConnectionOptions options, bool verbose)
    {
        var via = options.UsesRedis ? $"Redis {options.RedisEndpoints()}" : string.Join(", ", options.Gateways);
        if (!options.UsesRedis && !await AnyListens(options.Gateways))
            throw new TimeoutException($"nothing listens on {via}: no gateway of cluster '{options.ClusterId}' (service '{options.ServiceId}') " +
                "is running there; start its silos, or check --gateway.");
        var builder = Host.CreateApplicationBuilder();
        UseSerilog(builder, verbose);
        builder.UseOrleansClient(client => client.UseOrchestratorCluster(options));
        var host = builder.Build();
        // Orleans' client keeps looking for a gateway until it is cancelled: bound it, and say what to check.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        try
        {
            await host.StartAsync(timeout.Token);
        }
        catch (OperationCanceledException e) when (timeout.IsCancellationRequested)
        {
            host.Dispose();
            throw new TimeoutException($"no gateway of cluster '{options.ClusterId}' (service '{options.ServiceId}') answered within " +
                $"{options.ConnectTimeoutSeconds} s via {via}: are its silos running, with the same Cluster:ClusterId and ServiceId? " + TlsHint(options.Tls), e);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return new ClusterConnection([host], host.Services.GetRequiredService<IClusterClient>(), $"cluster via {via}");
    }

    /// <summary>
    /// Whether a TCP connection to any of <paramref name="gateways"/> succeeds within a few seconds: a refused port fails
    /// the command at once, instead of Orleans' client retrying for the whole connect timeout.
    /// </summary>
    static async Task<bool> AnyListens(IEnumerable<string> gateways)
    {
        async Task<bool> Listens(string gateway)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                await socket.ConnectAsync(OrchestratorHosting.ParseEndpoint(gateway), patience.Token);
                return true;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                return e is OperationCanceledException;   // no answer yet is not a refusal: let Orleans wait its timeout
            }
        }
        return (await Task.WhenAll(gateways.Select(Listens))).Any(listens => listens);
    }

    /// <summary>
    /// <paramref name="silos"/> silos in this process and <paramref name="processes"/> silo host processes beside it, each
    /// owning <paramref name="devices"/> (several silos may share one GPU), on free loopback ports so they never join (or
    /// collide with) a development cluster on the default ports. The first is the primary; grains are reached through it.
    /// Silo names: "embedded", or "embedded-0", ...; the processes "process-0", ...
    /// Without a configured Cluster:Secret the silos share a random one of this run (the processes get it by environment).
    /// </summary>
    public static async Task<ClusterConnection> StartEmbeddedAsync(ClusterConnectionOptions options, string devices, int silos, bool verbose,
        int processes = 0)
    {
        if (silos < 1) throw new ArgumentOutOfRangeException(nameof(silos), $"--local-silos must be at least 1; got {silos}.");
        if (processes < 0) throw new ArgumentOutOfRangeException(nameof(processes), $"--local-processes must not be negative; got {processes}.");
        var hosts = new List<IHost>();
        var children = new List<LocalSiloProcess>();
        // Random rather than the development key: these silos' channels are reachable by every user of this machine.
        if (string.IsNullOrWhiteSpace(options.Secret)) options.Secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        try
        {
            for (int i = 0; i < silos; i++)
            {
                var builder = Host.CreateApplicationBuilder();
                UseSerilog(builder, verbose);
                int siloPort = FreePort(), gatewayPort = FreePort();
                var name = silos == 1 && processes == 0 ? "embedded" : $"embedded-{i}";
                var silo = new SiloHostOptions { Name = name, Devices = devices, SiloPort = siloPort, GatewayPort = gatewayPort };
                if (i == 0) options.PrimarySiloPort = siloPort;
                builder.UseOrleans(orleans => orleans.UseOrchestratorCluster(options, silo));
                var host = builder.Build();
                await host.StartAsync();
                hosts.Add(host);
            }
            for (int i = 0; i < processes; i++)
                children.Add(LocalSiloProcess.Start($"process-{i}", devices, options.PrimarySiloPort, FreePort(), FreePort(), options.MaxMessageMB,
                    options.Secret, options.Tls));
            var grains = hosts[0].Services.GetRequiredService<IGrainFactory>();
            if (processes > 0) await WaitForSilos(grains, silos + processes, children);
            var what = (silos == 1 ? $"embedded silo" : $"{silos} embedded silos") + (processes > 0 ? $" and {processes} silo processes" : "") +
                       (silos + processes == 1 ? $" ({devices})" : $" ({devices} each)");
            return new ClusterConnection(hosts, grains, what, children);
        }
        catch
        {
            await StopAsync(hosts, children);
            throw;
        }
    }

    /// <summary>Until <paramref name="count"/> silos advertise their devices; fails with a silo process's output when one exits.</summary>
    static async Task WaitForSilos(IGrainFactory grains, int count, IReadOnlyList<LocalSiloProcess> children)
    {
        var cluster = grains.GetGrain<Orchestrator.Grains.IClusterGrain>(Orchestrator.Grains.IClusterGrain.Key);
        var deadline = DateTime.UtcNow + JoinTimeout;
        while ((await cluster.GetDevicesAsync()).Select(d => d.Silo).Distinct().Count() < count)
        {
            if (children.FirstOrDefault(c => c.HasExited) is { } exited)
                throw new InvalidOperationException($"silo process {exited.Name} exited while joining:{Environment.NewLine}{exited.Output}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the silo processes did not join within {JoinTimeout.TotalSeconds} s:{Environment.NewLine}" +
                    string.Join(Environment.NewLine, children.Select(c => $"--- {c.Name}{Environment.NewLine}{c.Output}")));
            await Task.Delay(250);
        }
    }

    static void UseSerilog(HostApplicationBuilder builder, bool verbose) =>
        builder.Services.AddSerilog(logger => logger
            .MinimumLevel.Is(verbose ? LogEventLevel.Information : LogEventLevel.Warning)
            .MinimumLevel.Override("Orleans", verbose ? LogEventLevel.Information : LogEventLevel.Error)
            .MinimumLevel.Override("Polly", LogEventLevel.Warning)
            // A host that fails to start logs the exception the command then reports anyway: once is enough.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting", verbose ? LogEventLevel.Information : LogEventLevel.Fatal)
            .Enrich.FromLogContext()
            .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}"));

    /// <summary>
    /// A TLS handshake that fails looks to an Orleans client like a gateway that hangs up, so it retries until the
    /// timeout: say what to check on either side.
    /// </summary>
    static string TlsHint(ClusterTlsOptions tls) => tls.Enabled
        ? "This client uses TLS: do the silos trust its certificate (they log each one they refuse, and why), and does it trust theirs " +
          "(--tls-ca, --tls-thumbprint; --verbose shows what it refused)?"
        : "If the cluster uses TLS (Cluster:Tls), give this client a certificate the silos trust and the CA to check theirs: --tls-certificate, --tls-ca.";

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public ValueTask DisposeAsync() => new(StopAsync(hosts, Processes));

    /// <summary>
    /// Stops the connection as <see cref="DisposeAsync"/> does, but stops waiting once <paramref name="abort"/> is
    /// cancelled. Cancelled before, it only sends the silo processes SIGTERM (they leave by themselves) and leaves the
    /// silos in this process to end with it: a graceful stop would wait for the grain calls in flight (a training step)
    /// and deactivate grains under them, and Orleans' ungraceful stop disposes the silo's services under them, either
    /// way with errors in the log.
    /// </summary>
    public async Task StopAsync(CancellationToken abort)
    {
        var stopping = abort.IsCancellationRequested ? Task.WhenAll(Processes.Select(p => p.DisposeAsync().AsTask())) : StopAsync(hosts, Processes);
        try
        {
            await stopping.WaitAsync(abort);
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // aborted: what is still stopping ends with the process
        }
    }

    /// <summary>Stops silo processes first (they leave while the primary still answers), then the hosts, newest first.</summary>
    static async Task StopAsync(IReadOnlyList<IHost> hosts, IReadOnlyList<LocalSiloProcess> processes)
    {
        await Task.WhenAll(processes.Select(p => p.DisposeAsync().AsTask()));
        foreach (var host in hosts.Reverse())
        {
            await host.StopAsync();
            host.Dispose();
        }
    }
}
