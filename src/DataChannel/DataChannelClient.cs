using System.Collections.Concurrent;
using System.Net;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// The sending end of the data channel: <see cref="DataChannelOptions.Connections"/> pooled TCP connections per server
/// endpoint, large transfers striped over them (<see cref="StripedPeer"/>), frames on one connection written one after
/// another (sends to different endpoints run in parallel). Each connection proves the cluster secret of
/// <see cref="DataChannelOptions.Secret"/> and checks the server's proof before its first frame; <paramref name="options"/>
/// without a secret is an <see cref="ArgumentException"/>.
/// </summary>
public sealed class DataChannelClient(DataChannelOptions options) : IDisposable
{
    readonly DataChannelOptions options = Validated(options);
    readonly ConcurrentDictionary<IPEndPoint, StripedPeer> peers = new();
    volatile bool disposed;

    /// <summary>
    /// Sends <paramref name="tensor"/> (any device; the caller keeps ownership) as <paramref name="transfer"/> to the
    /// server at <paramref name="to"/>. Completes when the last byte is handed to the kernel, not when the server has
    /// read it: receive errors surface at the server's <see cref="DataChannelServer.ReceiveAsync"/>.
    /// Throws <see cref="ArgumentException"/> for what the wire format cannot carry, <see cref="IOException"/> when the
    /// connection cannot be made or breaks or the handshake fails (the server refused this client's secret, or could
    /// not prove it knows it), and <see cref="TimeoutException"/> when connecting, the handshake or a write takes too long.
    /// </summary>
    public Task SendAsync(IPEndPoint to, Guid transfer, torch.Tensor tensor, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var header = FrameHeader.For(transfer, tensor, options.ChunkBytes);
        if (header.PayloadBytes > options.MaxPayloadBytes)
            throw new ArgumentException(
                $"data channel transfer {transfer}: {header.PayloadBytes} bytes exceed the configured maximum payload of {options.MaxPayloadBytes} bytes.");
        var peer = peers.GetOrAdd(to, endpoint => new StripedPeer(endpoint, options));
        // Disposed meanwhile: this peer may have been added after Dispose emptied the table.
        if (disposed) peer.Dispose();
        return peer.SendAsync(header, tensor, cancellation);
    }

    /// <summary>Closes every connection; sends in flight fail.</summary>
    public void Dispose()
    {
        disposed = true;
        foreach (var peer in peers.Values) peer.Dispose();
        peers.Clear();
    }

    static DataChannelOptions Validated(DataChannelOptions options)
    {
        options.Validate();
        return options;
    }
}
