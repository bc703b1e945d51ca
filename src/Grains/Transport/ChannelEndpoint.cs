using System.Net;
using Microsoft.Extensions.Hosting;
using Orchestrator.Grains.Transport.Channel;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// This silo's end of the TCP data channel: the server other silos send tensors to, the client it sends with, and
/// the "host:port" it advertises in its silo metadata. The server listens from construction (port 0 picks a free
/// port) because the advertised endpoint must be known while the silo is configured. Stopped with the silo.
/// </summary>
public sealed class ChannelEndpoint : IHostedService, IDisposable
{
    public const string MetadataKey = "data-channel";

    public DataChannelServer Server { get; }
    public DataChannelClient Client { get; }
    public string Advertised { get; }
    /// <summary>How long an unpack waits for bytes that were already sent before the grain call (they normally wait for it).</summary>
    public TimeSpan ReceiveTimeout { get; }

    /// <param name="advertised">The address other silos reach this one at, when it listens on another (e.g. 0.0.0.0).</param>
    public ChannelEndpoint(IPAddress address, int port, TimeSpan receiveTimeout, IPAddress? advertised = null)
    {
        Server = new DataChannelServer(new IPEndPoint(address, port));
        Client = new DataChannelClient();
        Advertised = $"{advertised ?? address}:{Server.LocalEndPoint.Port}";
        ReceiveTimeout = receiveTimeout;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken) => await Server.StopAsync();

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
    }
}
