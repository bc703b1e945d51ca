using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Orchestrator.DataChannel;

/// <summary>
/// The mutual proof of the cluster secret that opens every data channel connection, before any frame. This file is
/// the whole handshake format; FrameHeader describes the frames that follow it.
/// </summary>
/// <remarks>
/// All integers are little-endian; mac(label, a, b) is HMAC-SHA256 keyed with the cluster secret
/// (<see cref="DataChannelOptions.Secret"/>) over the ASCII label, then a, then b.
/// <code>
/// offset  size  field
/// server hello, 38 bytes, server to client:
/// 0       4     magic 0x4B48434F ("OCHK" as bytes)
/// 4       2     version (1)
/// 6       32    server nonce
/// client hello, 70 bytes, client to server:
/// 0       4     magic 0x4B48434F
/// 4       2     version (1)
/// 6       32    client nonce
/// 38      32    mac("orchestrator-channel/1 client", server nonce, client nonce)
/// verdict, 33 bytes, server to client:
/// 0       1     0 accepted, 1 wrong secret, 2 wrong protocol
/// 1       32    accepted: mac("orchestrator-channel/1 server", client nonce, server nonce); refused: zeros
/// </code>
/// The server writes its hello as soon as it accepts. The client checks magic and version, then sends its hello; the
/// server checks magic and version (a data channel frame's magic instead means a sender that skipped the handshake)
/// and the client's mac, answers with the verdict and closes the connection unless it accepted. The client reads the
/// verdict and checks the server's mac, so that it never streams a tensor to a server that does not know the secret.
/// Fresh random nonces on both sides make every proof valid for its own connection only, and the two labels keep a
/// proof of one side from passing for the other's. After the verdict the server never writes again, so a client's
/// connection that turns readable was closed. Both sides bound the handshake by <see cref="DataChannelOptions.HandshakeTimeout"/>.
/// </remarks>
internal static class ChannelHandshake
{
    public const uint Magic = 0x4B48434F;
    public const ushort Version = 1;
    const int NonceBytes = 32;
    const int MacBytes = 32;
    const int PreambleBytes = sizeof(uint) + sizeof(ushort);
    public const int ServerHelloBytes = PreambleBytes + NonceBytes;
    public const int ClientHelloBytes = PreambleBytes + NonceBytes + MacBytes;
    public const int VerdictBytes = 1 + MacBytes;

    static readonly byte[] ClientLabel = Encoding.ASCII.GetBytes("orchestrator-channel/1 client");
    static readonly byte[] ServerLabel = Encoding.ASCII.GetBytes("orchestrator-channel/1 server");

    enum Verdict : byte { Accepted = 0, WrongSecret = 1, WrongProtocol = 2 }

    /// <summary>
    /// The server's side: null when the peer proved it knows <paramref name="secret"/> (and got the server's proof),
    /// else why it was refused (the verdict was sent, the caller closes the connection). Throws what the stream throws
    /// when the peer goes away or <paramref name="cancellation"/> fires.
    /// </summary>
    public static async Task<string?> AcceptAsync(Stream stream, byte[] secret, CancellationToken cancellation)
    {
        var serverHello = new byte[ServerHelloBytes];
        WritePreamble(serverHello);
        var serverNonce = serverHello.AsMemory(PreambleBytes, NonceBytes);
        RandomNumberGenerator.Fill(serverNonce.Span);
        await stream.WriteAsync(serverHello, cancellation).ConfigureAwait(false);

        var clientHello = new byte[ClientHelloBytes];
        if (!await ReadFullAsync(stream, clientHello.AsMemory(0, PreambleBytes), cancellation).ConfigureAwait(false))
            return "it closed the connection during the handshake";
        if (ProtocolProblem(clientHello, "its hello") is { } problem)
        {
            await SendVerdictAsync(stream, Verdict.WrongProtocol, mac: null, cancellation).ConfigureAwait(false);
            return BinaryPrimitives.ReadUInt32LittleEndian(clientHello) == FrameHeader.Magic
                ? "wrong protocol: it sent a data channel frame without the handshake (a sender of an older build, or not a data channel client)"
                : $"wrong protocol: {problem}";
        }
        if (!await ReadFullAsync(stream, clientHello.AsMemory(PreambleBytes), cancellation).ConfigureAwait(false))
            return "it closed the connection during the handshake";

        var clientNonce = clientHello.AsMemory(PreambleBytes, NonceBytes);
        var expected = Mac(secret, ClientLabel, serverNonce.Span, clientNonce.Span);
        if (!CryptographicOperations.FixedTimeEquals(expected, clientHello.AsSpan(PreambleBytes + NonceBytes, MacBytes)))
        {
            await SendVerdictAsync(stream, Verdict.WrongSecret, mac: null, cancellation).ConfigureAwait(false);
            return "wrong secret: its proof does not match this silo's cluster secret (Cluster:Secret)";
        }
        await SendVerdictAsync(stream, Verdict.Accepted, Mac(secret, ServerLabel, clientNonce.Span, serverNonce.Span), cancellation).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// The client's side, on a connection just made to <paramref name="endpoint"/>: returns when both sides have proved
    /// they know <paramref name="secret"/>. Throws an <see cref="IOException"/> naming the endpoint when the server
    /// refused or could not prove it, speaks another protocol, or closed the connection.
    /// </summary>
    public static async Task ConnectAsync(Stream stream, byte[] secret, string endpoint, CancellationToken cancellation)
    {
        var serverHello = new byte[ServerHelloBytes];
        await ReadFromServerAsync(stream, serverHello, endpoint, cancellation).ConfigureAwait(false);
        if (ProtocolProblem(serverHello, "its handshake") is { } problem)
            throw new IOException($"{endpoint} is not a data channel server this build can talk to: {problem}.");

        var clientHello = new byte[ClientHelloBytes];
        WritePreamble(clientHello);
        var clientNonce = clientHello.AsMemory(PreambleBytes, NonceBytes);
        RandomNumberGenerator.Fill(clientNonce.Span);
        var serverNonce = serverHello.AsMemory(PreambleBytes, NonceBytes);
        Mac(secret, ClientLabel, serverNonce.Span, clientNonce.Span).CopyTo(clientHello.AsSpan(PreambleBytes + NonceBytes));
        try
        {
            await stream.WriteAsync(clientHello, cancellation).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw Lost(endpoint, e);
        }

        var verdict = new byte[VerdictBytes];
        await ReadFromServerAsync(stream, verdict, endpoint, cancellation).ConfigureAwait(false);
        switch ((Verdict)verdict[0])
        {
            case Verdict.Accepted:
                var expected = Mac(secret, ServerLabel, clientNonce.Span, serverNonce.Span);
                if (!CryptographicOperations.FixedTimeEquals(expected, verdict.AsSpan(1)))
                    throw new IOException($"the data channel server at {endpoint} could not prove it knows the cluster secret: " +
                        "the secret does not match (Cluster:Secret); nothing was sent to it.");
                return;
            case Verdict.WrongSecret:
                throw new IOException($"the data channel server at {endpoint} refused the handshake: the cluster secret does not match " +
                    "(Cluster:Secret must be the same on every silo of the cluster).");
            case Verdict.WrongProtocol:
                throw new IOException($"the data channel server at {endpoint} refused the handshake: it speaks another handshake version than {Version}.");
            default:
                throw new IOException($"the data channel server at {endpoint} answered the handshake with the unknown verdict {verdict[0]}.");
        }
    }

    static void WritePreamble(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[sizeof(uint)..], Version);
    }

    /// <summary>What is wrong with the magic and version that open <paramref name="what"/>, or null.</summary>
    static string? ProtocolProblem(ReadOnlySpan<byte> preamble, string what)
    {
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(preamble);
        if (magic != Magic) return $"{what} starts with 0x{magic:X8}, not the data channel handshake's magic 0x{Magic:X8}";
        var version = BinaryPrimitives.ReadUInt16LittleEndian(preamble[sizeof(uint)..]);
        return version == Version ? null : $"{what} is version {version}; this build speaks version {Version}";
    }

    static byte[] Mac(byte[] secret, byte[] label, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        var message = new byte[label.Length + first.Length + second.Length];
        label.CopyTo(message, 0);
        first.CopyTo(message.AsSpan(label.Length));
        second.CopyTo(message.AsSpan(label.Length + first.Length));
        return HMACSHA256.HashData(secret, message);
    }

    static async Task SendVerdictAsync(Stream stream, Verdict verdict, byte[]? mac, CancellationToken cancellation)
    {
        var message = new byte[VerdictBytes];
        message[0] = (byte)verdict;
        mac?.CopyTo(message, 1);
        await stream.WriteAsync(message, cancellation).ConfigureAwait(false);
    }

    /// <summary>Fills <paramref name="into"/> from the server at <paramref name="endpoint"/>; an error naming it when it closed or failed first.</summary>
    static async Task ReadFromServerAsync(Stream stream, Memory<byte> into, string endpoint, CancellationToken cancellation)
    {
        bool full;
        try
        {
            full = await ReadFullAsync(stream, into, cancellation).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw Lost(endpoint, e);
        }
        if (!full) throw new IOException($"the data channel server at {endpoint} closed the connection during the handshake.");
    }

    static IOException Lost(string endpoint, IOException e) =>
        new($"the connection to the data channel server at {endpoint} failed during the handshake: {e.Message}", e);

    /// <summary>Fills <paramref name="into"/>; false when the peer closed the connection first.</summary>
    static async Task<bool> ReadFullAsync(Stream stream, Memory<byte> into, CancellationToken cancellation) =>
        await stream.ReadAtLeastAsync(into, into.Length, throwOnEndOfStream: false, cancellation).ConfigureAwait(false) == into.Length;
}
