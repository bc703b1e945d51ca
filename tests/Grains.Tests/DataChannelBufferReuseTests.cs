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
            Assert.True(ReceiveBufferPool.IsLent(firstAddress), "the received tensor is not over a block of the pool");
        }
        Assert.False(ReceiveBufferPool.IsLent(firstAddress), "disposing the only tensor over the block did not give it back");
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
            // Still lent, so neither released nor handed out again: stopping released only the pool's free blocks.
            Assert.True(ReceiveBufferPool.IsLent(Address(received)), "stopping the server took back the block of a tensor still in use");
            AssertBitExact(sent, received);
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task Without_a_pool_every_transfer_gets_fresh_memory()
    {
        var unpooled = Options with { ReceivePoolBytes = 0 };
        await using var server = Server(unpooled);
        using var client = new DataChannelClient(unpooled);
        using var keptSent = Random(ScalarType.Int32, Elements);
        using var disposedSent = Random(ScalarType.Int32, Elements);
        using var lastSent = Random(ScalarType.Int32, Elements);
        using var kept = await RoundTrip(server, client, keptSent);
        using (var disposed = await RoundTrip(server, client, disposedSent))
        {
            AssertBitExact(disposedSent, disposed);
            Assert.NotEqual(Address(kept), Address(disposed));
            AssertFresh(disposed, "the second transfer");
        }
        // Where a pool would hand the disposed tensor's block on (A_disposed_tensor_gives_its_buffer_to_the_next_transfer).
        using var last = await RoundTrip(server, client, lastSent);
        AssertFresh(last, "a transfer after an earlier one was disposed");
        AssertFresh(kept, "the first transfer");
        AssertBitExact(keptSent, kept);
        AssertBitExact(lastSent, last);
    }

    static void AssertFresh(Tensor received, string what) =>
        Assert.False(ReceiveBufferPool.IsLent(Address(received)), $"{what} without a pool was received into a pool's block");
}
