using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Hosting;
using Serilog;
using Serilog.Events;

namespace Orchestrator.Client;

/// <summary>A connection to a cluster: an Orleans client of remote gateways, or a silo hosted in this process.</summary>
public sealed class ClusterConnection(IHost host, IGrainFactory grains, string description) : IAsyncDisposable
{
    public IGrainFactory Grains { get; } = grains;
    public string Description { get; } = description;

    /// <summary>An Orleans client of the cluster behind <paramref name="options"/>' gateways.</summary>
    public static async Task<ClusterConnection> ConnectAsync(ClusterConnectionOptions options, bool verbose)
    {
        var builder = Host.CreateApplicationBuilder();
        UseSerilog(builder, verbose);
        builder.UseOrleansClient(client => client.UseOrchestratorCluster(options));
        var host = builder.Build();
        await host.StartAsync();
        return new ClusterConnection(host, host.Services.GetRequiredService<IClusterClient>(), $"cluster via {string.Join(", ", options.Gateways)}");
    }

    /// <summary>
    /// A single silo in this process owning <paramref name="devices"/>, on free loopback ports so it never joins
    /// (or collides with) a development cluster on the default ports.
    /// </summary>
    public static async Task<ClusterConnection> StartEmbeddedAsync(ClusterConnectionOptions options, string devices, bool verbose)
    {
        var builder = Host.CreateApplicationBuilder();
        UseSerilog(builder, verbose);
        int siloPort = FreePort(), gatewayPort = FreePort();
        var silo = new SiloHostOptions { Name = "embedded", Devices = devices, SiloPort = siloPort, GatewayPort = gatewayPort };
        options.PrimarySiloPort = siloPort;
        builder.UseOrleans(orleans => orleans.UseOrchestratorCluster(options, silo));
        var host = builder.Build();
        await host.StartAsync();
        return new ClusterConnection(host, host.Services.GetRequiredService<IGrainFactory>(), $"embedded silo ({devices})");
    }

    static void UseSerilog(HostApplicationBuilder builder, bool verbose) =>
        builder.Services.AddSerilog(logger => logger
            .MinimumLevel.Is(verbose ? LogEventLevel.Information : LogEventLevel.Warning)
            .MinimumLevel.Override("Orleans", verbose ? LogEventLevel.Information : LogEventLevel.Error)
            .MinimumLevel.Override("Polly", LogEventLevel.Warning)
            .Enrich.FromLogContext()
            .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}"));

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
    }
}
