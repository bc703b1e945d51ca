using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// A server takes in only transfers its silo's jobs announced (<see cref="DataChannelServer.Expect"/>): anything
/// else, however well authenticated, is refused at its header, allocates nothing, is logged, and fails its waiter.
/// </summary>
public sealed class DataChannelAdmissionTests
{
    static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Fact(Timeout = 20_000)]
    public async Task With_nothing_announced_every_transfer_is_refused_at_its_header()
    {
        var log = new CapturingLogger<DataChannelServer>();
        await using var server = Unannounced(logger: log);
        using var client = Client();
        using var tensor = Random(ScalarType.Float32, 1000);
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, Patience);
        await client.SendAsync(server.LocalEndPoint, transfer, tensor);

        var error = await ThrowsWithin<IOException>(Prompt, () => receive);
        Assert.Contains($"data channel transfer {transfer} (4000 bytes) from 127.0.0.1:", error.Message);
        Assert.Contains("was refused: no job on this silo expects data", error.Message);
        Assert.Equal(new DataChannelCounters(0, 1, 0, 0, 0), server.Counters);
        Assert.Contains(log.Warnings, warning => warning.Contains($"transfer {transfer}") && warning.Contains("no job on this silo expects data"));
    }

    [Theory(Timeout = 20_000)]
    [InlineData(false, "no job on this silo expects data")]
    [InlineData(true, "it is larger than any transfer a job on this silo expects (the largest announced is 1048576 bytes")]
    public async Task A_header_claiming_4_GiB_that_no_announcement_covers_is_refused_without_allocation(bool announce, string expected)
    {
        // The default ceiling (MaxPayloadBytes, 4 GiB) lets the header through: only the announcement stands in its way.
        await using var server = Unannounced();
        using var announced = announce ? server.Expect(1 << 20) : null;
        var transfer = Guid.NewGuid();
        const long payload = 4L << 30;
        var receive = server.ReceiveAsync(transfer, Patience);
        await WriteRawAsync(server.LocalEndPoint, Header(new FrameHeader(transfer, 2, [1L << 30], payload, 4 << 20, FramePart.Whole(payload))));

        var error = await ThrowsWithin<IOException>(Prompt, () => receive);
        Assert.Contains($"data channel transfer {transfer} ({payload} bytes)", error.Message);
        Assert.Contains(expected, error.Message);
        var counters = server.Counters;
        Assert.Equal((1, 0, 0L), (counters.RefusedTransfers, counters.AllocatedTransfers, counters.HeldBytes));
    }

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(AllDTypes))]
    public async Task A_transfer_within_an_announcement_arrives_bit_exact(ScalarType dtype)
    {
        await using var server = Unannounced();
        using var client = Client();
        using var sent = Random(dtype, 3, 40_001);
        using var announced = server.Expect(sent.NumberOfElements * sent.ElementSize);
        using var received = await RoundTrip(server, client, sent);
        AssertBitExact(sent, received);
        Assert.Equal(1, server.Counters.AllocatedTransfers);
    }

    public static TheoryData<ScalarType> AllDTypes() => [.. DTypes];

    [Fact(Timeout = 20_000)]
    public async Task The_largest_live_announcement_admits_and_a_withdrawn_one_no_longer_does()
    {
        await using var server = Unannounced();
        using var client = Client();
        using var small = Random(ScalarType.Float64, 100);     // 800 bytes
        using var large = Random(ScalarType.Float64, 10_000);  // 80000 bytes
        var forSmall = server.Expect(800);
        var forLarge = server.Expect(80_000);

        (await RoundTrip(server, client, large)).Dispose();
        forLarge.Dispose();
        forLarge.Dispose();   // withdrawn once, whatever the caller does
        var tooLarge = await ThrowsWithin<IOException>(Prompt, () => RoundTrip(server, client, large));
        Assert.Contains("the largest announced is 800 bytes", tooLarge.Message);
        (await RoundTrip(server, client, small)).Dispose();

        forSmall.Dispose();
        var unexpected = await ThrowsWithin<IOException>(Prompt, () => RoundTrip(server, client, small));
        Assert.Contains("no job on this silo expects data", unexpected.Message);
    }

    [Fact(Timeout = 30_000)]
    public async Task Repeated_unsolicited_transfers_allocate_nothing_and_the_connections_carry_on()
    {
        // 16 MiB each in 4 MiB chunks: striped in 4 parts over the client's 4 connections, every part read and dropped.
        await using var server = Unannounced();
        using var client = Client();
        using var tensor = Random(ScalarType.Float32, 4 << 20);
        var transfers = Enumerable.Range(0, 8).Select(_ => Guid.NewGuid()).ToArray();
        foreach (var transfer in transfers)
        {
            var receive = server.ReceiveAsync(transfer, Patience);
            await client.SendAsync(server.LocalEndPoint, transfer, tensor);
            Assert.Contains("no job on this silo expects data", (await ThrowsWithin<IOException>(Prompt, () => receive)).Message);
        }
        Assert.Equal(new DataChannelCounters(0, transfers.Length, 0, 0, 0), server.Counters);

        using var announced = server.Expect(tensor.NumberOfElements * tensor.ElementSize);
        using var received = await RoundTrip(server, client, tensor);
        AssertBitExact(tensor, received);
    }

    [Fact]
    public void An_announcement_of_a_negative_size_is_refused()
    {
        using var server = Unannounced();
        Assert.Throws<ArgumentOutOfRangeException>(() => server.Expect(-1));
    }
}
