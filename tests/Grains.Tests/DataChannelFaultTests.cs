using System.Net;
using System.Net.Sockets;
using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Corrupt, truncated, oversized, late and undeliverable transfers fail promptly with errors that say what went wrong.</summary>
public sealed class DataChannelFaultTests
{
    // Well under Patience, with room for a CI machine busy building other projects.
    static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);
    const int ChunkBytes = 16 << 10;
    // A float32 (3, 5000) frame in 16 KiB chunks: an 80-byte header (rank 2), then chunks of 16384, 16384, 16384 and 10848 bytes, each with its checksum.
    const int HeaderBytes = 80;
    const int ChunkWithChecksum = ChunkBytes + 8;

    [Theory(Timeout = 20_000)]
    [InlineData(0, "magic")]
    [InlineData(4, "version")]
    [InlineData(6, "header checksum mismatch")]
    [InlineData(37, "header checksum mismatch")]
    [InlineData(45, "header checksum mismatch")]
    [InlineData(60, "header checksum mismatch")]
    [InlineData(HeaderBytes - 3, "header checksum mismatch")]
    [InlineData(HeaderBytes + 10, "checksum mismatch in chunk 0 of 4")]
    [InlineData(HeaderBytes + ChunkBytes + 3, "checksum mismatch in chunk 0 of 4")]
    [InlineData(HeaderBytes + ChunkWithChecksum + 100, "checksum mismatch in chunk 1 of 4")]
    [InlineData(HeaderBytes + 3 * ChunkWithChecksum + 10_000, "checksum mismatch in chunk 3 of 4")]
    public async Task A_flipped_byte_fails_its_transfer_with_the_specific_error(int offset, string expected)
    {
        await using var server = Server();
        var transfer = Guid.NewGuid();
        using var tensor = Random(ScalarType.Float32, 3, 5000);
        var frame = Frame(transfer, tensor, ChunkBytes);
        frame[offset] ^= 0x5A;

        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, frame);
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains(expected, error.Message);
        Assert.Contains(transfer.ToString(), error.Message);

        // The bad connection is gone; the server still serves new ones.
        using var client = Client();
        var next = Guid.NewGuid();
        await client.SendAsync(server.LocalEndPoint, next, tensor);
        using var received = await server.ReceiveAsync(next, Patience);
        AssertBitExact(tensor, received);
    }

    public static TheoryData<string, byte, long[], long, int> BadHeaders() => new()
    {
        { "unknown dtype code 99", 99, [4], 16, ChunkBytes },
        { "rank 9 exceeds the maximum of 8", 2, [1, 1, 1, 1, 1, 1, 1, 1, 1], 4, ChunkBytes },
        { "negative size -5 in dimension 1", 2, [2, -5], 40, ChunkBytes },
        { "does not match the payload length 12", 2, [2, 2], 12, ChunkBytes },
        { "negative payload length", 2, [0], -4, ChunkBytes },
        { "chunk length 6 is not a positive multiple of the element size 4", 2, [4], 16, 6 },
        { "declared payload of 4398046511104 bytes exceeds the configured maximum of 1048576 bytes", 2, [1L << 40], 4L << 40, ChunkBytes },
    };

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(BadHeaders))]
    public async Task A_header_with_a_valid_checksum_but_impossible_fields_is_rejected_before_allocation(
        string expected, byte dtypeCode, long[] shape, long payloadBytes, int chunkBytes)
    {
        // 1 TiB declared against a 1 MiB limit: were it allocated first, the test would fail on memory, not on this message.
        await using var server = Server(Options with { MaxPayloadBytes = 1 << 20 });
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, Header(new FrameHeader(transfer, dtypeCode, shape, payloadBytes, chunkBytes, FramePart.Whole(payloadBytes))));
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains(expected, error.Message);
        Assert.Contains(transfer.ToString(), error.Message);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_corrupt_chunk_is_reported_even_when_the_connection_dies_in_the_next_one()
    {
        // Chunk 0 is verified while chunk 1 is read; the corruption came first, so it is what the waiter learns.
        await using var server = Server();
        var transfer = Guid.NewGuid();
        using var tensor = Random(ScalarType.Float32, 3, 5000);
        var frame = Frame(transfer, tensor, ChunkBytes);
        frame[HeaderBytes + 10] ^= 0x5A;

        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, frame[..(HeaderBytes + ChunkWithChecksum + 1000)]);
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains("checksum mismatch in chunk 0 of 4", error.Message);
    }

    [Theory(Timeout = 20_000)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_peer_gone_mid_transfer_fails_the_waiter_promptly_saying_how_far_it_got(bool waitingAlready)
    {
        await using var server = Server();
        var transfer = Guid.NewGuid();
        using var tensor = Random(ScalarType.Float32, 3, 5000);
        var frame = Frame(transfer, tensor, ChunkBytes);
        var payloadSent = ChunkBytes + 1000;

        var receive = waitingAlready ? server.ReceiveAsync(transfer, Patience) : null;
        await WriteRawAsync(server.LocalEndPoint, frame[..(HeaderBytes + ChunkWithChecksum + 1000)]);
        var error = await ThrowsWithin<IOException>(Prompt, () => receive ?? server.ReceiveAsync(transfer, Patience));
        Assert.Contains($"{transfer}", error.Message);
        Assert.Contains($"after {payloadSent} of 60000 payload bytes", error.Message);
    }

    [Fact(Timeout = 20_000)]
    public async Task Waiting_past_the_timeout_names_the_transfer()
    {
        await using var server = Server();
        var transfer = Guid.NewGuid();
        var error = await ThrowsWithin<TimeoutException>(Prompt, () => server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(200)));
        Assert.Contains(transfer.ToString(), error.Message);

        // The timed-out waiter is gone: the transfer can still be received.
        using var client = Client();
        using var tensor = Random(ScalarType.Int32, 10);
        await client.SendAsync(server.LocalEndPoint, transfer, tensor);
        using var received = await server.ReceiveAsync(transfer, Patience);
        AssertBitExact(tensor, received);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_cancelled_receive_throws_and_frees_the_transfer()
    {
        await using var server = Server();
        var transfer = Guid.NewGuid();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await ThrowsWithin<TaskCanceledException>(Prompt, () => server.ReceiveAsync(transfer, Patience, cancel.Token));
        await Assert.ThrowsAsync<TimeoutException>(() => server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(50)));
    }

    [Fact(Timeout = 20_000)]
    public async Task A_second_waiter_for_one_transfer_is_refused()
    {
        await using var server = Server();
        var transfer = Guid.NewGuid();
        var first = server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAsync<InvalidOperationException>(() => server.ReceiveAsync(transfer, Patience));
        await Assert.ThrowsAsync<TimeoutException>(() => first);
    }

    [Fact(Timeout = 20_000)]
    public async Task Disposing_the_server_fails_every_pending_waiter()
    {
        var server = Server();
        var transfers = Enumerable.Range(0, 3).Select(_ => Guid.NewGuid()).ToArray();
        var waiters = transfers.Select(t => server.ReceiveAsync(t, Patience)).ToArray();
        server.Dispose();
        for (int i = 0; i < waiters.Length; i++)
        {
            var error = await ThrowsWithin<ObjectDisposedException>(Prompt, () => waiters[i]);
            Assert.Contains(transfers[i].ToString(), error.Message);
        }
        await Assert.ThrowsAsync<ObjectDisposedException>(() => server.ReceiveAsync(Guid.NewGuid(), Patience));
    }

    [Theory(Timeout = 20_000)]
    [InlineData(10, "transfer {0}: cannot connect to")]
    // Two default chunks: two parts, and part 0's failure is the one thrown, whichever part fails first.
    [InlineData(2 << 20, "transfer {0} part 0 of 2 (payload bytes 0 to 4194304): cannot connect to")]
    public async Task Sending_to_a_closed_port_fails_quickly_naming_the_endpoint(long elements, string expected)
    {
        // Bound but never listening: connecting is refused, and no test running beside this one can take the port
        // (a port released after probing can be, and then the connection succeeds).
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var closed = (IPEndPoint)probe.LocalEndPoint!;
        using var client = Client();
        using var tensor = Random(ScalarType.Float32, elements);
        var transfer = Guid.NewGuid();
        var error = await ThrowsWithin<IOException>(Prompt, () => client.SendAsync(closed, transfer, tensor));
        Assert.True(error.Message.Contains($"cannot connect to {closed}") && error.Message.Contains(string.Format(expected, transfer)), error.Message);
    }

    [Theory(Timeout = 20_000)]
    [InlineData(1, "transfer {0} to", "of 134217728 payload bytes")]
    [InlineData(4, "transfer {0} part ", "of 33554432 payload bytes")]
    public async Task A_send_to_a_server_that_stops_reading_times_out_saying_how_far_it_got(int connections, string subject, string howFar)
    {
        // Accepts, does the handshake and never reads: the kernel buffers fill and the write stalls.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var stalled = Options with { WriteTimeout = TimeSpan.FromMilliseconds(300), Connections = connections };
        using var client = new DataChannelClient(stalled);
        // 128 MiB, 32 MiB per part when striped: more than the kernel buffers of both ends can take in.
        using var tensor = rand(32 << 20);
        var transfer = Guid.NewGuid();
        var send = client.SendAsync((IPEndPoint)listener.LocalEndPoint!, transfer, tensor);
        var accepted = await AcceptAsync(listener, connections);
        try
        {
            var error = await ThrowsWithin<TimeoutException>(Prompt, () => send);
            Assert.Contains(string.Format(subject, transfer), error.Message);
            Assert.Contains(howFar, error.Message);
        }
        finally
        {
            foreach (var stream in accepted) stream.Dispose();
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task A_dtype_the_format_cannot_carry_is_refused_before_sending()
    {
        using var client = Client();
        using var bytes = ones(4, dtype: ScalarType.Byte);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.SendAsync(new IPEndPoint(IPAddress.Loopback, 9), Guid.NewGuid(), bytes));
        Assert.Contains("Byte", error.Message);
    }
}
