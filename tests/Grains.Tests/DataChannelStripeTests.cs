using System.Net;
using System.Net.Sockets;
using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// Transfers of two chunks or more are striped over several connections as parts: they arrive bit for bit in any
/// order, a part that fails fails its transfer (naming the part) without leaking its tensor, and parts that disagree
/// with their transfer are refused.
/// </summary>
public sealed class DataChannelStripeTests
{
    static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);
    const int ChunkBytes = 16 << 10;
    static readonly DataChannelOptions SmallChunks = Options with { ChunkBytes = ChunkBytes };
    // float32 (40000): 160000 bytes (pooled), 10 chunks, so 4 parts of 2, 3, 2 and 3 chunks starting at chunks 0, 2, 5 and 7.
    const long Elements = 40_000;
    // A rank-1 part header: 56 fixed bytes, one size, the checksum.
    const int HeaderBytes = 72;

    public static TheoryData<ScalarType, int, long[]> StripedShapes()
    {
        // Connections, and shapes whose payloads end mid-chunk and split unevenly (from 1.0001 to 24 chunks for 2 to 8-byte elements).
        (int, long[])[] cases = [(1, [100_003]), (2, [8193]), (3, [3, 7001]), (4, [5, 11, 997]), (7, [100_003])];
        var data = new TheoryData<ScalarType, int, long[]>();
        foreach (var dtype in DTypes)
            foreach (var (connections, shape) in cases)
                data.Add(dtype, connections, shape);
        return data;
    }

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(StripedShapes))]
    public async Task Striped_transfers_of_every_dtype_arrive_bit_exact(ScalarType dtype, int connections, long[] shape)
    {
        var options = SmallChunks with { Connections = connections };
        await using var server = Server(options);
        using var client = new DataChannelClient(options);
        using var sent = Random(dtype, shape);
        for (int i = 0; i < 2; i++)
        {
            // The second time over the connections the first opened.
            using var received = await RoundTrip(server, client, sent);
            AssertBitExact(sent, received);
        }
    }

    [Theory(Timeout = 20_000)]
    [InlineData(1, Elements, 1)]
    [InlineData(2, Elements, 2)]
    [InlineData(4, Elements, 4)]
    [InlineData(16, Elements, 10)]
    [InlineData(4, ChunkBytes / 4, 1)]
    public async Task A_client_sends_one_part_per_connection_and_at_most_one_per_chunk(int connections, long elements, int expectedParts)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = Client(SmallChunks with { Connections = connections });
        using var tensor = Random(ScalarType.Float32, elements);
        var transfer = Guid.NewGuid();
        // Each connection waits for its handshake before it writes: the server's side runs beside the send.
        var accepting = AcceptAsync(listener, expectedParts);
        await client.SendAsync((IPEndPoint)listener.LocalEndPoint!, transfer, tensor).WaitAsync(Patience);

        var parts = new List<FramePart>();
        foreach (var accepted in await accepting)
        {
            using var stream = accepted;
            var header = new byte[FrameHeader.MaxEncodedBytes];
            await stream.ReadExactlyAsync(header.AsMemory(0, FrameHeader.FixedBytes));
            var length = FrameHeader.LengthFromFixedPart(header);
            await stream.ReadExactlyAsync(header.AsMemory(FrameHeader.FixedBytes, length - FrameHeader.FixedBytes));
            var frame = FrameHeader.Decode(header.AsSpan(0, length), long.MaxValue);
            Assert.Equal(transfer, frame.Transfer);
            parts.Add(frame.Part);
        }
        var split = FrameHeader.For(transfer, tensor, ChunkBytes).Split(expectedParts).Select(header => header.Part);
        Assert.Equal(split, parts.OrderBy(part => part.Index));
    }

    [Theory(Timeout = 20_000)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Parts_arriving_in_any_order_on_separate_connections_make_one_tensor(bool waitingAlready)
    {
        await using var server = Server(SmallChunks);
        using var sent = Random(ScalarType.Int64, 7, 3001);
        var transfer = Guid.NewGuid();
        var receive = waitingAlready ? server.ReceiveAsync(transfer, Patience) : null;
        await Task.WhenAll(Frames(transfer, sent, ChunkBytes, parts: 5).Reverse().Select(part => WriteRawAsync(server.LocalEndPoint, part)));
        using var received = await (receive ?? server.ReceiveAsync(transfer, Patience));
        AssertBitExact(sent, received);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_part_whose_connection_dies_fails_the_transfer_naming_the_part_releases_its_tensor_and_drops_the_later_parts()
    {
        await using var server = Server(SmallChunks);
        using var client = new DataChannelClient(SmallChunks);
        using var sent = Random(ScalarType.Float32, Elements);
        IntPtr buffer;
        using (var first = await RoundTrip(server, client, sent))
            buffer = Address(first);

        // The failing transfer takes that buffer from the pool again: it must come back when the transfer fails.
        var transfer = Guid.NewGuid();
        var parts = Frames(transfer, sent, ChunkBytes, parts: 4);
        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, parts[2][..(HeaderBytes + ChunkBytes + 8 + 1000)]);
        var error = await ThrowsWithin<IOException>(Prompt, () => receive);
        Assert.Contains($"transfer {transfer} part 2 of 4 (payload bytes 81920 to 114688)", error.Message);
        Assert.Contains($"connection lost after {ChunkBytes + 1000} of 32768 payload bytes", error.Message);

        // The other parts come later on one connection, then a transfer somebody waits for: they are read and
        // dropped, and the connection still reads the next frame.
        using var marker = Random(ScalarType.Int32, 10);
        var markerTransfer = Guid.NewGuid();
        var markerArrived = server.ReceiveAsync(markerTransfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, [.. parts[0], .. parts[1], .. parts[3], .. Frame(markerTransfer, marker, ChunkBytes)]);
        using (var markerReceived = await markerArrived)
            AssertBitExact(marker, markerReceived);
        var late = await Assert.ThrowsAsync<IOException>(() => server.ReceiveAsync(transfer, Patience));
        Assert.Contains("part 2 of 4", late.Message);

        using var next = await RoundTrip(server, client, sent);
        AssertBitExact(sent, next);
        Assert.Equal(buffer, Address(next));
    }

    [Fact(Timeout = 20_000)]
    public async Task A_corrupt_part_fails_the_transfer_naming_the_part_and_the_chunk()
    {
        await using var server = Server(SmallChunks);
        using var sent = Random(ScalarType.Float32, Elements);
        var transfer = Guid.NewGuid();
        var parts = Frames(transfer, sent, ChunkBytes, parts: 4);
        parts[2][HeaderBytes + ChunkBytes + 8 + 100] ^= 0x5A;
        var receive = server.ReceiveAsync(transfer, Patience);
        await Task.WhenAll(parts.Select(part => WriteRawAsync(server.LocalEndPoint, part)));
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains($"transfer {transfer} part 2 of 4", error.Message);
        Assert.Contains("checksum mismatch in chunk 6 of 10", error.Message);

        using var client = new DataChannelClient(SmallChunks);
        using var next = await RoundTrip(server, client, sent);
        AssertBitExact(sent, next);
    }

    public static TheoryData<string, int, int, long, long> BadParts() => new()
    {
        // A float32 (4096) payload of 4 chunks of 4096 bytes.
        { "part count 0 is not between 1 and 64", 0, 0, 0, 16384 },
        { "part count 65 is not between 1 and 64", 0, 65, 0, 256 },
        { "5 parts for a payload of 4 chunks", 0, 5, 0, 4096 },
        { "part index 4 is not below the part count 4", 4, 4, 12288, 4096 },
        { "part 3 of 4 claims 8192 bytes at offset 12288, outside the declared payload of 16384 bytes", 3, 4, 12288, 8192 },
        { "part 0 of 4 claims 4096 bytes at offset -4096, outside", 0, 4, -4096, 4096 },
        { "part 1 of 4 claims 9223372036854775807 bytes at offset 4096, outside", 1, 4, 4096, long.MaxValue },
        { "part 1 of 4 claims payload bytes 4000 to 8096, but the split of 4 chunks into 4 parts puts it at bytes 4096 to 8192", 1, 4, 4000, 4096 },
        { "part 0 of 2 claims payload bytes 0 to 4096, but the split of 4 chunks into 2 parts puts it at bytes 0 to 8192", 0, 2, 0, 4096 },
    };

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(BadParts))]
    public async Task A_part_header_claiming_an_impossible_range_is_rejected_before_allocation(string expected, int index, int count, long offset, long bytes)
    {
        await using var server = Server(Options with { MaxPayloadBytes = 1 << 20 });
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, Header(new FrameHeader(transfer, 2, [4096], 16384, 4096, new FramePart(index, count, offset, bytes))));
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains(expected, error.Message);
        Assert.Contains(transfer.ToString(), error.Message);
    }

    public static TheoryData<string, string> Disagreements() => new()
    {
        { "shape", "does not match the part that came before it: it declares Float32 [200, 200], 160000 bytes in 16384-byte chunks, 4 parts, that one declared Float32 [40000]" },
        { "dtype", "does not match the part that came before it: it declares Int32 [40000]" },
        { "chunk", "does not match the part that came before it: it declares Float32 [40000], 160000 bytes in 32768-byte chunks" },
        { "count", "does not match the part that came before it: it declares Float32 [40000], 160000 bytes in 16384-byte chunks, 5 parts" },
        { "repeat", "part 0 of 4 (payload bytes 0 to 32768) from" },
    };

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(Disagreements))]
    public async Task A_part_that_disagrees_with_the_parts_before_it_fails_the_transfer(string change, string expected)
    {
        await using var server = Server(SmallChunks);
        using var sent = Random(ScalarType.Float32, Elements);
        var transfer = Guid.NewGuid();
        var whole = FrameHeader.For(transfer, sent, ChunkBytes);
        var second = change switch
        {
            "shape" => whole with { Shape = [200, 200] },
            "dtype" => whole with { DTypeCode = 6 },
            "chunk" => whole with { ChunkBytes = 2 * ChunkBytes },
            "count" => whole.Split(5)[1],
            _ => whole.Split(4)[0],
        };
        if (change is "shape" or "dtype" or "chunk") second = second.Split(4)[1];

        var receive = server.ReceiveAsync(transfer, Patience);
        // One connection: the first part is in before the second is read.
        await WriteRawAsync(server.LocalEndPoint, [.. Frame(whole.Split(4)[0], sent), .. Frame(second, sent)]);
        var error = await ThrowsWithin<InvalidDataException>(Prompt, () => receive);
        Assert.Contains($"transfer {transfer}", error.Message);
        Assert.Contains(expected, error.Message);
        if (change == "repeat") Assert.Contains("arrived a second time", error.Message);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_transfer_missing_a_part_times_out_its_waiter_and_later_fails_as_stalled()
    {
        await using var server = Server(SmallChunks with { HeldExpiry = TimeSpan.FromSeconds(1) });
        using var sent = Random(ScalarType.Float32, Elements);
        var transfer = Guid.NewGuid();
        var parts = Frames(transfer, sent, ChunkBytes, parts: 4);
        await WriteRawAsync(server.LocalEndPoint, [.. parts[0], .. parts[1], .. parts[3]]);
        var timeout = await ThrowsWithin<TimeoutException>(Prompt, () => server.ReceiveAsync(transfer, TimeSpan.FromMilliseconds(200)));
        Assert.Contains(transfer.ToString(), timeout.Message);

        // Failed as stalled within the expiry and a sweep of the last chunk, and this waiter learns it.
        var stalled = await ThrowsWithin<IOException>(Prompt, () => server.ReceiveAsync(transfer, Patience));
        Assert.Contains($"data channel transfer {transfer} (160000 bytes) stalled", stalled.Message);
        Assert.Contains("3 of 4 parts arrived", stalled.Message);
        Assert.Contains("HeldExpiry", stalled.Message);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_transfer_still_arriving_counts_against_the_held_bytes()
    {
        await using var server = Server(SmallChunks with { MaxHeldBytes = 200_000 });
        using var arriving = Random(ScalarType.Float32, Elements);
        using var refused = Random(ScalarType.Float32, 20_000);
        using var marker = Random(ScalarType.Int32, 10);
        var (arrivingTransfer, refusedTransfer, markerTransfer) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        var parts = Frames(arrivingTransfer, arriving, ChunkBytes, parts: 4);

        // One connection, so the marker's arrival means the frames before it were read.
        var markerArrived = server.ReceiveAsync(markerTransfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, [.. parts[0], .. Frame(refusedTransfer, refused, ChunkBytes), .. Frame(markerTransfer, marker, ChunkBytes)]);
        (await markerArrived).Dispose();
        var error = await Assert.ThrowsAsync<IOException>(() => server.ReceiveAsync(refusedTransfer, Patience));
        Assert.Contains("1 tensors of 160000 bytes were held already", error.Message);

        await WriteRawAsync(server.LocalEndPoint, [.. parts[1], .. parts[2], .. parts[3]]);
        using var received = await server.ReceiveAsync(arrivingTransfer, Patience);
        AssertBitExact(arriving, received);
    }
}
