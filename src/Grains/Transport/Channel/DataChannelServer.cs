using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Orchestrator.Grains.Transport.Channel;

/// <summary>
/// The receiving end of the data channel: listens on a TCP endpoint, reads the frames every connected
/// <see cref="DataChannelClient"/> sends (the parts of a striped transfer arrive on several connections at once) and
/// hands each received CPU tensor to whoever waits for its transfer id.
/// </summary>
public sealed class DataChannelServer : IAsyncDisposable, IDisposable
{
    /// <summary>How long stopping waits for the accept and read loops after closing their sockets.</summary>
    static readonly TimeSpan LoopShutdownTimeout = TimeSpan.FromSeconds(5);

    readonly DataChannelOptions options;
    readonly ILogger logger;
    readonly Socket listener;
    readonly TransferMailbox mailbox;
    readonly ReceiveBufferPool buffers;
    readonly CancellationTokenSource stopping = new();
    readonly object gate = new();
    readonly Dictionary<Socket, Task> connections = [];
    readonly Task acceptLoop;
    bool stopped;

    /// <summary>Starts listening on <paramref name="endpoint"/> (port 0 picks a free port: see <see cref="LocalEndPoint"/>).</summary>
    public DataChannelServer(IPEndPoint endpoint, DataChannelOptions? options = null, ILogger<DataChannelServer>? logger = null)
    {
        this.options = options ?? DataChannelOptions.Default;
        this.options.Validate();
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // A restarted server can take its port back while old connections linger in TIME_WAIT.
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            SocketTuning.Apply(listener, this.options.SocketBufferBytes);
            listener.Bind(endpoint);
            listener.Listen(backlog: 64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        buffers = new ReceiveBufferPool(this.options.ReceivePoolBytes);
        mailbox = new TransferMailbox(this.options, this.logger, buffers);
        acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address and port the server listens on; what senders connect to.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>
    /// The CPU tensor of <paramref name="transfer"/>, which the caller owns (and moves to its device).
    /// Throws <see cref="TimeoutException"/> when it does not arrive within <paramref name="timeout"/>,
    /// <see cref="InvalidDataException"/> when one of its frames was corrupt, <see cref="IOException"/> when a connection
    /// died in the middle of one of its frames, it stalled or it was dropped for the holding limits, and <see cref="ObjectDisposedException"/> when the server stops.
    /// </summary>
    public Task<torch.Tensor> ReceiveAsync(Guid transfer, TimeSpan timeout, CancellationToken cancellation = default) =>
        mailbox.ReceiveAsync(transfer, timeout, cancellation);

    /// <summary>Stops accepting, closes every connection, fails every waiter and waits (bounded) for the loops to end.</summary>
    public async Task StopAsync()
    {
        var loops = BeginStop();
        try
        {
            await Task.WhenAll(loops).WaitAsync(LoopShutdownTimeout).ConfigureAwait(false);
            stopping.Dispose();
        }
        catch (TimeoutException)
        {
            logger.LogWarning("Data channel server on {Endpoint}: loops still running {Timeout} after stopping.", LocalEndPoint, LoopShutdownTimeout);
        }
    }

    public void Dispose()
    {
        if (Task.WaitAll(BeginStop(), LoopShutdownTimeout)) stopping.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>Closes the listener, the connections and the mailbox; returns the loops to wait for.</summary>
    Task[] BeginStop()
    {
        Socket[] open;
        lock (gate)
        {
            if (stopped) return [];
            stopped = true;
            open = [.. connections.Keys];
        }
        stopping.Cancel();
        listener.Dispose();
        foreach (var socket in open) socket.Dispose();
        mailbox.Dispose();
        buffers.Dispose();
        lock (gate) return [acceptLoop, .. connections.Values];
    }

    async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (stopping.IsCancellationRequested || e is ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // A connection that died before it was accepted; the listener itself is fine.
                logger.LogWarning(e, "Data channel server on {Endpoint}: accept failed.", LocalEndPoint);
                continue;
            }
            lock (gate)
            {
                if (stopped)
                {
                    socket.Dispose();
                    return;
                }
                // Added under the lock that the loop's own removal takes, so it is never removed before it is added.
                connections.Add(socket, Task.Run(() => ServeAsync(socket)));
            }
        }
    }

    async Task ServeAsync(Socket socket)
    {
        var peer = socket.RemoteEndPoint?.ToString() ?? "an unknown peer";
        using var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = new FrameReader(stream, options.MaxPayloadBytes, mailbox, peer);
        try
        {
            SocketTuning.Apply(socket, options.SocketBufferBytes);
            while (await reader.ReadAsync(stopping.Token).ConfigureAwait(false)) { }
        }
        catch (Exception e) when (stopping.IsCancellationRequested)
        {
            logger.LogDebug(e, "Data channel connection from {Peer} closed by stopping.", peer);
        }
        catch (Exception e)
        {
            // Framing is lost after any error: end the connection and fail the transfer it was carrying.
            logger.LogWarning(e, "Data channel connection from {Peer} failed.", peer);
            if (reader.CurrentTransfer is { } transfer) mailbox.Fail(transfer, e);
        }
        finally
        {
            lock (gate) connections.Remove(socket);
        }
    }
}
