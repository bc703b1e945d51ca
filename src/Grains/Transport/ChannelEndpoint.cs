using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orchestrator.DataChannel;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// This silo's end of the TCP data channel: the server other silos send tensors to, the client it sends with, and
/// the "host:port" it advertises in its silo metadata. Both authenticate with the cluster secret. The port is bound
/// while the silo is configured (port 0 picks a free one) because the advertised endpoint must be known then; the
/// server is made, with the silo's logger, when the silo's services are built. Stopped with the silo.
/// </summary>
public sealed class ChannelEndpoint : IHostedService, IDisposable
{
    public const string MetadataKey = "data-channel";

    public DataChannelServer Server { get; }
    public DataChannelClient Client { get; }
    public string Advertised { get; }
    /// <summary>How long an unpack waits for bytes that were already sent before the grain call (they normally wait for it).</summary>
    public TimeSpan ReceiveTimeout { get; }

    ChannelEndpoint(Socket listening, DataChannelOptions options, string advertised, TimeSpan receiveTimeout, ILogger<DataChannelServer> logger)
    {
        Server = new DataChannelServer(listening, options, logger);
        Client = new DataChannelClient(options);
        Advertised = advertised;
        ReceiveTimeout = receiveTimeout;
    }

    /// <summary>
    /// Binds the data channel's port on <paramref name="listen"/> now and registers the endpoint (a singleton and a
    /// hosted service) with <paramref name="services"/>; returns the "host:port" to advertise.
    /// </summary>
    /// <param name="advertised">The address other silos reach this one at, when it listens on another (e.g. 0.0.0.0).</param>
    /// <param name="secret">The cluster secret (ClusterSecret.For); an <see cref="ArgumentException"/> when missing or short.</param>
    public static string Register(IServiceCollection services, IPEndPoint listen, IPAddress? advertised, TimeSpan receiveTimeout, byte[] secret)
    {
        var options = DataChannelOptions.Default with { Secret = secret };
        var listening = DataChannelServer.Listen(listen, options);
        var where = $"{advertised ?? listen.Address}:{((IPEndPoint)listening.LocalEndPoint!).Port}";
        services.AddSingleton(provider =>
            new ChannelEndpoint(listening, options, where, receiveTimeout, provider.GetRequiredService<ILogger<DataChannelServer>>()));
        services.AddHostedService(provider => provider.GetRequiredService<ChannelEndpoint>());
        return where;
    }

    /// <summary>
    /// Announces that a job of this silo expects transfers of up to <paramref name="maxTransferBytes"/> bytes until the
    /// handle is disposed; without a live announcement the server refuses every transfer (<see cref="DataChannelServer.Expect"/>).
    /// </summary>
    public IDisposable Expect(long maxTransferBytes) => Server.Expect(maxTransferBytes);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken) => await Server.StopAsync();

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}
