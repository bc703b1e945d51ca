using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// Received tensors come from the server's pool of reused buffers; a buffer goes back to the pool only when nothing
/// references it any more, so a tensor (or a view of it) the caller keeps is never overwritten by a later transfer.
/// </summary>
public sealed class DataChannelBufferReuseTests
{
    // Above ReceiveBufferPool.MinPooledBytes, so these transfers use the pool.
    const long Elements = 300_000;

    [Fact(Timeout = 20_000)]
    public async Task A_kept_tensor_is_never_overwritten_by_the_next_transfer()
    {
        await using var server = Server();
        using var client = Client();
        using var firstSent = Random(ScalarType.Float32, Elements);
        using var secondSent = Random(ScalarType.Float32, Elements);
        using var first = await RoundTrip(server, client, firstSent);
        using var second = await RoundTrip(server, client, secondSent);
        Assert.NotEqual(Address(first), Address(second));
        AssertBitExact(firstSent, first);
        AssertBitExact(secondSent, second);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_view_keeps_its_buffer_after_the_received_tensor_is_disposed()
    {
        await using var server = Server();
        using var client = Client();
        using var firstSent = Random(ScalarType.Int64, Elements);
        using var secondSent = Random(ScalarType.Int64, Elements);
        using var expectedTail = firstSent.narrow(0, Elements / 2, Elements / 2);
        Tensor tail;
        using (var first = await RoundTrip(server, client, firstSent))
            tail = first.narrow(0, Elements / 2, Elements / 2);
        using (tail)
        {
            using var second = await RoundTrip(server, client, secondSent);
            AssertBitExact(expectedTail, tail);
            AssertBitExact(secondSent, second);
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task A_disposed_tensor_gives_its_buffer_to_the_next_transfer()
    {
        await using var server = Server();
        using var client = Client();
        using var firstSent = Random(ScalarType.Float64, Elements);
        using var secondSent = Random(ScalarType.Float64, Elements);
        IntPtr firstAddress;
        using (var first = await RoundTrip(server, client, firstSent))
        {
            AssertBitExact(firstSent, first);
            firstAddress = Address(first);
        }
        using var second = await RoundTrip(server, client, secondSent);
        Assert.Equal(firstAddress, Address(second));
        AssertBitExact(secondSent, second);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_tensor_outlives_the_server_that_received_it()
    {
        using var client = Client();
        using var sent = Random(ScalarType.BFloat16, 3, Elements);
        Tensor received;
        await using (var server = Server())
            received = await RoundTrip(server, client, sent);
        using (received)
        {
            // Had stopping released the lent buffer, an allocation of the same size would likely land on it.
            using var sameSize = Random(ScalarType.BFloat16, 3, Elements);
            AssertBitExact(sent, received);
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task Without_a_pool_every_transfer_gets_fresh_memory()
    {
        var unpooled = Options with { ReceivePoolBytes = 0 };
        await using var server = Server(unpooled);
        using var client = new DataChannelClient(unpooled);
        using var sent = Random(ScalarType.Int32, Elements);
        using var received = await RoundTrip(server, client, sent);
        AssertBitExact(sent, received);
    }
}
