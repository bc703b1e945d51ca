using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// Every connection opens with the mutual proof of the cluster secret: peers that do not know it, skip the handshake,
/// speak another protocol or say nothing are refused before a frame is read, each with one warning naming them, and
/// cost the server no tensor; a client never streams to a server that cannot prove it knows the secret.
/// </summary>
public sealed class DataChannelAuthenticationTests
{
    static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Fact(Timeout = 20_000)]
    public async Task A_client_with_the_wrong_secret_is_refused_naming_the_endpoint_and_the_server_allocates_nothing()
    {
        var log = new CapturingLogger<DataChannelServer>();
        await using var server = Server(logger: log);
        using var impostor = Client(Options with { Secret = RandomNumberGenerator.GetBytes(32) });
        using var tensor = Random(ScalarType.Float32, 1000);
        var transfer = Guid.NewGuid();

        var error = await ThrowsWithin<IOException>(Prompt, () => impostor.SendAsync(server.LocalEndPoint, transfer, tensor));
        Assert.Contains($"transfer {transfer}", error.Message);
        Assert.Contains($"the data channel server at {server.LocalEndPoint} refused the handshake: the cluster secret does not match", error.Message);
        Assert.Contains("Cluster:Secret", error.Message);

        await Until(() => server.Counters.RefusedConnections == 1, "the refused connection to be counted");
        Assert.Equal(new DataChannelCounters(1, 0, 0, 0, 0), server.Counters);
        await Until(() => log.Warnings.Count == 1, "the refusal's warning");
        var warning = Assert.Single(log.Warnings);
        Assert.Matches(@"^Data channel connection from 127\.0\.0\.1:\d+ refused: wrong secret", warning);
        await Assert.ThrowsAsync<TimeoutException>(() => server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(100)));

        // The server goes on serving clients that know the secret.
        using var member = Client();
        using var received = await RoundTrip(server, member, tensor);
        AssertBitExact(tensor, received);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_client_sends_nothing_to_a_server_that_cannot_prove_it_knows_the_secret()
    {
        // Plays a server that accepts every client without knowing the secret, and records what the client sends after the handshake.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        using var client = Client();
        using var tensor = Random(ScalarType.Int64, 100);
        var send = client.SendAsync(endpoint, Guid.NewGuid(), tensor);

        using var timeout = new CancellationTokenSource(Patience);
        using var stream = new NetworkStream(await listener.AcceptAsync(timeout.Token), ownsSocket: true);
        var hello = new byte[ChannelHandshake.ServerHelloBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(hello, ChannelHandshake.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(4), ChannelHandshake.Version);
        RandomNumberGenerator.Fill(hello.AsSpan(6));
        await stream.WriteAsync(hello, timeout.Token);
        await stream.ReadExactlyAsync(new byte[ChannelHandshake.ClientHelloBytes], timeout.Token);
        var forged = new byte[ChannelHandshake.VerdictBytes];   // "accepted", with a proof made up
        RandomNumberGenerator.Fill(forged.AsSpan(1));
        await stream.WriteAsync(forged, timeout.Token);

        var error = await ThrowsWithin<IOException>(Prompt, () => send);
        Assert.Contains($"the data channel server at {endpoint} could not prove it knows the cluster secret", error.Message);
        Assert.Contains("Cluster:Secret", error.Message);
        Assert.Equal(0, await stream.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false, timeout.Token));
    }

    [Fact(Timeout = 20_000)]
    public async Task A_frame_sent_without_the_handshake_is_refused_before_it_is_read()
    {
        var log = new CapturingLogger<DataChannelServer>();
        await using var server = Server(logger: log);
        using var tensor = Random(ScalarType.Float32, 3, 5000);
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(500));

        using (var socket = await ConnectAsync(server.LocalEndPoint))
        {
            await socket.SendAsync(Frame(transfer, tensor, 16 << 10), SocketFlags.None);
            await ReadUntilClosedAsync(socket);
        }
        Assert.Equal(new DataChannelCounters(1, 0, 0, 0, 0), server.Counters);
        var warning = Assert.Single(log.Warnings);
        Assert.Contains("refused: wrong protocol: it sent a data channel frame without the handshake", warning);
        // Never read, so the transfer neither arrived nor failed: its waiter just times out.
        await Assert.ThrowsAsync<TimeoutException>(() => receive);
    }

    [Theory(Timeout = 20_000)]
    [InlineData(0x12345678u, ChannelHandshake.Version, "wrong protocol: its hello starts with 0x12345678")]
    [InlineData(ChannelHandshake.Magic, (ushort)2, "wrong protocol: its hello is version 2; this build speaks version 1")]
    public async Task A_hello_of_another_protocol_is_refused_naming_what_it_was(uint magic, ushort version, string expected)
    {
        var log = new CapturingLogger<DataChannelServer>();
        await using var server = Server(logger: log);
        var hello = new byte[ChannelHandshake.ClientHelloBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(hello, magic);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(4), version);
        using (var socket = await ConnectAsync(server.LocalEndPoint))
        {
            await socket.SendAsync(hello, SocketFlags.None);
            await ReadUntilClosedAsync(socket);
        }
        Assert.Equal(1, server.Counters.RefusedConnections);
        Assert.Contains(expected, Assert.Single(log.Warnings));
    }

    [Fact(Timeout = 20_000)]
    public async Task A_peer_that_connects_and_says_nothing_is_dropped_after_the_handshake_timeout()
    {
        var log = new CapturingLogger<DataChannelServer>();
        await using var server = Server(Options with { HandshakeTimeout = TimeSpan.FromMilliseconds(300) }, log);
        using (var silent = await ConnectAsync(server.LocalEndPoint))
            await ReadUntilClosedAsync(silent);   // the server's hello, then the close
        Assert.Equal(new DataChannelCounters(1, 0, 0, 0, 0), server.Counters);
        Assert.Contains("refused: timeout: it did not complete the handshake within 00:00:00.3000000", Assert.Single(log.Warnings));

        using var client = Client();
        using var tensor = Random(ScalarType.BFloat16, 77);
        using var received = await RoundTrip(server, client, tensor);
        AssertBitExact(tensor, received);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_client_names_a_server_that_does_not_speak_the_handshake()
    {
        // Accepts and sends something else first, as an unrelated service on that port would.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        using var client = Client();
        using var tensor = Random(ScalarType.Int32, 10);
        var send = client.SendAsync(endpoint, Guid.NewGuid(), tensor);
        using var accepted = await listener.AcceptAsync();
        await accepted.SendAsync(Enumerable.Repeat((byte)'H', ChannelHandshake.ServerHelloBytes).ToArray(), SocketFlags.None);
        var error = await ThrowsWithin<IOException>(Prompt, () => send);
        Assert.Contains($"{endpoint} is not a data channel server this build can talk to: its handshake starts with 0x48484848", error.Message);
    }

    public static TheoryData<byte[]?, string> BadSecrets() => new()
    {
        { null, "the data channel has no Secret: it authenticates every connection with the cluster secret (Cluster:Secret)" },
        { new byte[15], "the data channel's Secret has 15 bytes; the cluster secret (Cluster:Secret) needs at least 16" },
    };

    [Theory]
    [MemberData(nameof(BadSecrets))]
    public void Neither_a_server_nor_a_client_starts_without_a_secret(byte[]? secret, string expected)
    {
        var options = DataChannelOptions.Default with { Secret = secret };
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => new DataChannelServer(new IPEndPoint(IPAddress.Loopback, 0), options)).Message);
        Assert.Contains(expected, Assert.Throws<ArgumentException>(() => new DataChannelClient(options)).Message);
    }
}
