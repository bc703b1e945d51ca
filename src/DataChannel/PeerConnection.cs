using System.Net;
using System.Net.Sockets;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// One of a client's connections to one server (see <see cref="StripedPeer"/>): frames are written one at a time,
/// the connection is opened (and its handshake done, ChannelHandshake) on first use and opened again after it broke.
/// </summary>
internal sealed class PeerConnection(IPEndPoint endpoint, DataChannelOptions options) : IDisposable
{
    readonly byte[] secret = options.CheckedSecret();
    // Never disposed: it has no wait handle unless AvailableWaitHandle is used, and a send may still release it after Dispose.
    readonly SemaphoreSlim writing = new(1, 1);
    NetworkStream? stream;
    volatile bool disposed;

    /// <summary>Writes the frame of <paramref name="header"/>'s part of <paramref name="flat"/> (see <see cref="FrameWriter.WriteAsync"/>).</summary>
    public async Task SendAsync(FrameHeader header, torch.Tensor flat, CancellationToken cancellation)
    {
        await writing.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            var connected = await ConnectedAsync(header, cancellation).ConfigureAwait(false);
            await WriteAsync(connected, header, flat, cancellation).ConfigureAwait(false);
        }
        finally
        {
            writing.Release();
        }
    }

    public void Dispose()
    {
        disposed = true;
        // Aborts a send in flight; that send then drops the connection itself.
        stream?.Dispose();
    }

    async Task WriteAsync(NetworkStream connected, FrameHeader header, torch.Tensor flat, CancellationToken cancellation)
    {
        long sent = 0;
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        stall.CancelAfter(options.WriteTimeout);
        try
        {
            await FrameWriter.WriteAsync(connected, header, flat, options.StageCpuTensors, progress: bytes =>
            {
                sent = bytes;
                stall.CancelAfter(options.WriteTimeout);
            }, stall.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Part of a frame may be on the wire: the connection cannot carry another one.
            Drop();
            if (e is OperationCanceledException && !cancellation.IsCancellationRequested)
                throw new TimeoutException(
                    $"data channel {header.Subject} to {endpoint} stalled: a write took longer than {options.WriteTimeout} " +
                    $"after {sent} of {header.Part.Bytes} payload bytes.");
            if (e is IOException or ObjectDisposedException && !cancellation.IsCancellationRequested)
                throw new IOException(
                    $"data channel {header.Subject} to {endpoint} failed after {sent} of {header.Part.Bytes} payload bytes: {e.Message}", e);
            throw;
        }
    }

    /// <summary>The open connection, or a new one when there is none or the server closed the old one.</summary>
    async Task<NetworkStream> ConnectedAsync(FrameHeader header, CancellationToken cancellation)
    {
        // Servers write nothing after the handshake, which was read to its end, so a readable socket means it was
        // closed or reset by the server.
        if (stream is { } open && !open.Socket.Poll(0, SelectMode.SelectRead)) return open;
        Drop();

        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(options.ConnectTimeout);
        try
        {
            SocketTuning.Apply(socket, options.SocketBufferBytes);
            await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            socket.Dispose();
            if (e is OperationCanceledException && !cancellation.IsCancellationRequested)
                throw new TimeoutException($"data channel {header.Subject}: connecting to {endpoint} took longer than {options.ConnectTimeout}.");
            if (e is SocketException socketError)
                throw new IOException($"data channel {header.Subject}: cannot connect to {endpoint}: {socketError.SocketErrorCode} ({socketError.Message}).", e);
            throw;
        }
        stream = new NetworkStream(socket, ownsSocket: true);
        await HandshakeAsync(stream, header, cancellation).ConfigureAwait(false);
        if (disposed)
        {
            Drop();
            throw new ObjectDisposedException(nameof(DataChannelClient), $"data channel {header.Subject}: the client was disposed while connecting to {endpoint}.");
        }
        return stream;
    }

    /// <summary>Proves the secret to the server and checks its proof; the connection is dropped when either fails.</summary>
    async Task HandshakeAsync(NetworkStream connected, FrameHeader header, CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(options.HandshakeTimeout);
        try
        {
            await ChannelHandshake.ConnectAsync(connected, secret, endpoint.ToString(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Drop();
            if (e is OperationCanceledException && !cancellation.IsCancellationRequested)
                throw new TimeoutException(
                    $"data channel {header.Subject}: the server at {endpoint} did not complete the handshake within {options.HandshakeTimeout}.");
            if (e is IOException && !cancellation.IsCancellationRequested)
                throw new IOException($"data channel {header.Subject}: {e.Message}", e);
            throw;
        }
    }

    void Drop()
    {
        stream?.Dispose();
        stream = null;
    }
}
