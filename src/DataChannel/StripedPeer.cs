using System.Net;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// A client's connections to one server (<see cref="DataChannelOptions.Connections"/> of them). One TCP stream on
/// loopback is bound by the one core that copies it through the kernel on each side; a transfer of two chunks or
/// more is therefore striped: split into as many parts as there are connections (at most one per chunk, see
/// <see cref="FramePart"/>), each written as its own frame on its own connection at the same time.
/// </summary>
internal sealed class StripedPeer(IPEndPoint endpoint, DataChannelOptions options) : IDisposable
{
    readonly PeerConnection[] connections = [.. Enumerable.Range(0, options.Connections).Select(_ => new PeerConnection(endpoint, options))];

    /// <summary>
    /// Sends every part and completes when all are handed to the kernel. A part that fails does not stop the others
    /// (stopping one mid-frame would cost its connection); the failure of the lowest-numbered part that failed, which
    /// names its part, is thrown: the same error whichever part reports first (Task.WhenAll's own choice follows
    /// completion order under load).
    /// Transfers sent whole always take the first connection, so they arrive in the order they were sent.
    /// </summary>
    public async Task SendAsync(FrameHeader header, torch.Tensor tensor, CancellationToken cancellation)
    {
        using var flat = FrameWriter.Flatten(tensor);
        var parts = header.Split((int)Math.Clamp(header.ChunkCount, 1, connections.Length));
        var sends = parts.Select(part => connections[part.Part.Index].SendAsync(part, flat, cancellation)).ToArray();
        try
        {
            await Task.WhenAll(sends).ConfigureAwait(false);
        }
        catch
        {
            await sends.First(send => !send.IsCompletedSuccessfully).ConfigureAwait(false);   // rethrows that part's own error
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var connection in connections) connection.Dispose();
    }
}
