using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// The receiving end of the data channel: listens on a TCP endpoint, admits connections whose peer proves it knows the
/// cluster secret (ChannelHandshake), reads the frames every connected <see cref="DataChannelClient"/> sends (the parts
/// of a striped transfer arrive on several connections at once) and hands each received CPU tensor to whoever waits for
/// its transfer id. Only transfers that a job of this silo announced (<see cref="Expect"/>) are taken in; the others
/// are refused at their header, before anything is allocated.
/// </summary>
public sealed class DataChannelServer : IAsyncDisposable, IDisposable
{
    /// <summary>How long stopping waits for the accept and read loops after closing their sockets.</summary>
    static readonly TimeSpan LoopShutdownTimeout = TimeSpan.FromSeconds(5);

    readonly DataChannelOptions options;
    readonly byte[] secret;
    readonly ILogger logger;
    readonly Socket listener;
    readonly TransferMailbox mailbox;
    readonly ReceiveBufferPool buffers;
    readonly TransferAdmission admission = new();
    readonly CancellationTokenSource stopping = new();
    readonly object gate = new();
    readonly Dictionary<Socket, Task> connections = [];
    readonly Task acceptLoop;
    long refusedConnections;
    bool stopped;

    /// <summary>
    /// Starts listening on <paramref name="endpoint"/> (port 0 picks a free port: see <see cref="LocalEndPoint"/>).
    /// Throws an <see cref="ArgumentException"/> when <paramref name="options"/> has no secret or a setting out of range.
    /// </summary>
    public DataChannelServer(IPEndPoint endpoint, DataChannelOptions options, ILogger<DataChannelServer>? logger = null)
        : this(Listen(endpoint, options), options, logger)
    {
    }

    /// <summary>Serves on <paramref name="listening"/>, a socket from <see cref="Listen"/>, which it owns from here on.</summary>
    internal DataChannelServer(Socket listening, DataChannelOptions options, ILogger<DataChannelServer>? logger)
    {
        listener = listening;
        this.options = options;
        secret = options.CheckedSecret();
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        LocalEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        buffers = new ReceiveBufferPool(options.ReceivePoolBytes);
        mailbox = new TransferMailbox(options, this.logger, buffers, admission);
        acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>
    /// A socket listening on <paramref name="endpoint"/> for a server with <paramref name="options"/> (checked here),
    /// for a caller that must know the port before it can make the server (a silo advertises it while it is configured).
    /// </summary>
    internal static Socket Listen(IPEndPoint endpoint, DataChannelOptions options)
    {
        options.Validate();
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // A restarted server can take its port back while old connections linger in TIME_WAIT.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            SocketTuning.Apply(socket, options.SocketBufferBytes);
            socket.Bind(endpoint);
            socket.Listen(backlog: 64);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The address and port the server listens on; what senders connect to.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>
    /// The CPU tensor of <paramref name="transfer"/>, which the caller owns (and moves to its device).
    /// Throws <see cref="TimeoutException"/> when it does not arrive within <paramref name="timeout"/>,
    /// <see cref="InvalidDataException"/> when one of its frames was corrupt, <see cref="IOException"/> when a connection
    /// died in the middle of one of its frames, it stalled, it was refused (no job announced it, see <see cref="Expect"/>)
    /// or it was dropped for the holding limits, and <see cref="ObjectDisposedException"/> when the server stops.
    /// </summary>
    public Task<torch.Tensor> ReceiveAsync(Guid transfer, TimeSpan timeout, CancellationToken cancellation = default) =>
        mailbox.ReceiveAsync(transfer, timeout, cancellation);

    /// <summary>
    /// Announces that a job of this silo expects transfers of up to <paramref name="maxTransferBytes"/> payload bytes,
    /// until the returned handle is disposed: announce when the job's workers or coordinator start, dispose when they
    /// stop. While at least one announcement is live, a transfer larger than the largest of them is refused at its
    /// header; with none live, every transfer is, since no job on this silo expects data. A refused transfer allocates
    /// nothing (its payload is read and dropped), is logged, and its waiter gets an <see cref="IOException"/> saying why.
    /// <see cref="DataChannelOptions.MaxPayloadBytes"/> stays the ceiling whatever is announced.
    /// </summary>
    public IDisposable Expect(long maxTransferBytes) => admission.Expect(maxTransferBytes);

    /// <summary>What this server refused and allocated so far, and what it holds now.</summary>
    internal DataChannelCounters Counters => mailbox.Counters() with { RefusedConnections = Interlocked.Read(ref refusedConnections) };

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
            if (await HandshakeAsync(stream).ConfigureAwait(false) is { } refusal)
            {
                Interlocked.Increment(ref refusedConnections);
                logger.LogWarning("Data channel connection from {Peer} refused: {Reason}.", peer, refusal);
                return;
            }
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

    /// <summary>
    /// Null when the peer proved it knows the secret; else why it is refused (its connection is then closed, before a
    /// single frame byte is read).
    /// </summary>
    async Task<string?> HandshakeAsync(Stream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
        timeout.CancelAfter(options.HandshakeTimeout);
        try
        {
            return await ChannelHandshake.AcceptAsync(stream, secret, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return $"timeout: it did not complete the handshake within {options.HandshakeTimeout} (DataChannelOptions.HandshakeTimeout)";
        }
        catch (IOException e) when (!stopping.IsCancellationRequested)
        {
            return $"the connection failed during the handshake: {e.Message}";
        }
    }
}
