using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Tensors that arrive before their waiter are held within the configured count, bytes and time.</summary>
public sealed class DataChannelHoldingTests
{
    [Fact(Timeout = 20_000)]
    public async Task A_tensor_beyond_the_held_count_is_dropped_with_an_error_for_its_waiter()
    {
        await using var server = Server(Options with { MaxHeldTransfers = 2 });
        var (sent, transfers) = await SendUnawaited(server, Random(ScalarType.Float32, 100), Random(ScalarType.Float32, 100), Random(ScalarType.Float32, 100));
        try
        {
            var error = await Assert.ThrowsAsync<IOException>(() => server.ReceiveAsync(transfers[2], Patience));
            Assert.Contains(transfers[2].ToString(), error.Message);
            Assert.Contains("MaxHeldTransfers", error.Message);
            for (int i = 0; i < 2; i++)
            {
                using var received = await server.ReceiveAsync(transfers[i], Patience);
                AssertBitExact(sent[i], received);
            }
        }
        finally
        {
            foreach (var tensor in sent) tensor.Dispose();
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task A_tensor_beyond_the_held_bytes_is_dropped_with_an_error_for_its_waiter()
    {
        await using var server = Server(Options with { MaxHeldBytes = 1000 });
        var (sent, transfers) = await SendUnawaited(server, Random(ScalarType.Float64, 100), Random(ScalarType.Float64, 100));
        try
        {
            var error = await Assert.ThrowsAsync<IOException>(() => server.ReceiveAsync(transfers[1], Patience));
            Assert.Contains("800 bytes were held already", error.Message);
            using var received = await server.ReceiveAsync(transfers[0], Patience);
            AssertBitExact(sent[0], received);
        }
        finally
        {
            foreach (var tensor in sent) tensor.Dispose();
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task A_held_tensor_nobody_asks_for_expires()
    {
        await using var server = Server(Options with { HeldExpiry = TimeSpan.FromMilliseconds(100) });
        var (sent, transfers) = await SendUnawaited(server, Random(ScalarType.Int64, 100));
        using var tensor = sent[0];
        await Task.Delay(600);
        await Assert.ThrowsAsync<TimeoutException>(() => server.ReceiveAsync(transfers[0], TimeSpan.FromMilliseconds(100)));
    }

    /// <summary>
    /// Sends the tensors nobody waits for, then a marker somebody does: one connection delivers in order, so when
    /// the marker is in, all the others have been held or dropped.
    /// </summary>
    static async Task<(Tensor[] Sent, Guid[] Transfers)> SendUnawaited(DataChannelServer server, params Tensor[] tensors)
    {
        using var client = Client();
        var transfers = tensors.Select(_ => Guid.NewGuid()).ToArray();
        var marker = Guid.NewGuid();
        var markerArrived = server.ReceiveAsync(marker, Patience);
        for (int i = 0; i < tensors.Length; i++)
            await client.SendAsync(server.LocalEndPoint, transfers[i], tensors[i]);
        using var markerTensor = Random(ScalarType.Int32, 1);
        await client.SendAsync(server.LocalEndPoint, marker, markerTensor);
        (await markerArrived).Dispose();
        return (tensors, transfers);
    }
}
