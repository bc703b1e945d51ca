using System.Net.Sockets;

namespace Orchestrator.DataChannel;

/// <summary>Socket settings for bulk tensor streams.</summary>
internal static class SocketTuning
{
    /// <summary>
    /// Large kernel buffers keep a multi-megabyte chunk in flight while the other side hashes the previous one;
    /// Nagle off so that the small header and checksum writes are not held back waiting for an ACK.
    /// On a listener this must happen before Listen for the TCP window scale to allow the large receive window.
    /// </summary>
    public static void Apply(Socket socket, int bufferBytes)
    {
        socket.NoDelay = true;
        if (bufferBytes <= 0) return;
        socket.SendBufferSize = bufferBytes;
        socket.ReceiveBufferSize = bufferBytes;
    }
}
