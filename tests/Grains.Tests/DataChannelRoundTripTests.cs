using System.Net;
using Orchestrator.DataChannel;
using static Orchestrator.Grains.Tests.DataChannelTestKit;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Tensors sent over real loopback sockets arrive bit for bit, whatever their dtype, size, layout or concurrency.</summary>
public sealed class DataChannelRoundTripTests
{
    // Small chunks make "multi-chunk with a short last chunk" cheap to cover for every dtype.
    static readonly DataChannelOptions SmallChunks = Options with { ChunkBytes = 64 << 10 };

    public static TheoryData<ScalarType, long[]> DTypesAndShapes()
    {
        long[][] shapes = [[0], [3, 0, 2], [], [1], [7, 13, 3], [100_003]];
        var data = new TheoryData<ScalarType, long[]>();
        foreach (var dtype in DTypes)
            foreach (var shape in shapes)
                data.Add(dtype, shape);
        return data;
    }

    [Theory(Timeout = 20_000)]
    [MemberData(nameof(DTypesAndShapes))]
    public async Task Every_dtype_and_size_arrives_bit_exact(ScalarType dtype, long[] shape)
    {
        await using var server = Server(SmallChunks);
        using var client = new DataChannelClient(SmallChunks);
        using var sent = Random(dtype, shape);
        await AssertRoundTrip(server, client, sent);
    }

    [Theory(Timeout = 30_000)]
    [InlineData(ScalarType.Float32, new long[] { 6, 1024, 1024 })]
    [InlineData(ScalarType.BFloat16, new long[] { 3001, 4097 })]
    public async Task Tens_of_megabytes_arrive_bit_exact_in_default_chunks(ScalarType dtype, long[] shape)
    {
        await using var server = Server();
        using var client = Client();
        using var sent = Random(dtype, shape);
        await AssertRoundTrip(server, client, sent);
    }

    [Fact(Timeout = 20_000)]
    public async Task Non_contiguous_views_arrive_as_their_values()
    {
        await using var server = Server(SmallChunks);
        using var client = new DataChannelClient(SmallChunks);
        using var matrix = Random(ScalarType.Float32, 300, 257);
        using var transposed = matrix.t();
        using var wide = Random(ScalarType.Int64, 40, 1001);
        using var everyOther = wide[.., TensorIndex.Slice(null, null, 2)];
        using var row = Random(ScalarType.BFloat16, 1, 999);
        using var expanded = row.expand(50, 999);
        foreach (var view in new[] { transposed, everyOther, expanded })
        {
            Assert.False(view.is_contiguous());
            await AssertRoundTrip(server, client, view);
        }
    }

    [Theory(Timeout = 20_000)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Int32)]
    public async Task The_staged_path_for_GPU_tensors_arrives_bit_exact(ScalarType dtype)
    {
        var staged = SmallChunks with { StageCpuTensors = true };
        await using var server = Server(staged);
        using var client = new DataChannelClient(staged);
        using var sent = Random(dtype, 3, 100_001);
        await AssertRoundTrip(server, client, sent);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_tensor_sent_before_anyone_waits_is_held_for_the_waiter()
    {
        await using var server = Server();
        using var client = Client();
        using var sent = Random(ScalarType.Float64, 33, 17);
        var transfer = Guid.NewGuid();
        await client.SendAsync(server.LocalEndPoint, transfer, sent);
        using var received = await server.ReceiveAsync(transfer, Patience);
        AssertBitExact(sent, received);
    }

    [Fact(Timeout = 30_000)]
    public async Task Many_concurrent_transfers_share_one_connection()
    {
        await using var server = Server(SmallChunks);
        using var client = new DataChannelClient(SmallChunks);
        await AssertConcurrentRoundTrips(server, [client], transfersPerClient: 24);
    }

    [Fact(Timeout = 30_000)]
    public async Task Many_concurrent_transfers_over_several_connections()
    {
        await using var server = Server(SmallChunks);
        var clients = Enumerable.Range(0, 4).Select(_ => new DataChannelClient(SmallChunks)).ToArray();
        try
        {
            await AssertConcurrentRoundTrips(server, clients, transfersPerClient: 6);
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task One_client_sends_to_several_servers_at_once()
    {
        await using var first = Server();
        await using var second = Server();
        using var client = Client();
        using var a = Random(ScalarType.Float32, 512, 1024);
        using var b = Random(ScalarType.Int32, 1024, 513);
        await Task.WhenAll(AssertRoundTrip(first, client, a), AssertRoundTrip(second, client, b));
    }

    [Fact(Timeout = 20_000)]
    public async Task The_client_reconnects_after_the_server_restarts_on_the_same_port()
    {
        using var client = Client();
        using var sent = Random(ScalarType.Float32, 1000);
        IPEndPoint endpoint;
        await using (var server = Server())
        {
            endpoint = server.LocalEndPoint;
            await AssertRoundTrip(server, client, sent);
        }
        await using var restarted = Server(endpoint);
        await AssertRoundTrip(restarted, client, sent);
    }

    static async Task AssertRoundTrip(DataChannelServer server, DataChannelClient client, Tensor sent)
    {
        using var received = await RoundTrip(server, client, sent);
        AssertBitExact(sent, received);
    }

    /// <summary>Every client sends its tensors all at once while the receives wait in shuffled order.</summary>
    static async Task AssertConcurrentRoundTrips(DataChannelServer server, DataChannelClient[] clients, int transfersPerClient)
    {
        var sends = clients.SelectMany(client => Enumerable.Range(0, transfersPerClient).Select(i =>
            (Client: client, Transfer: Guid.NewGuid(), Tensor: Random(DTypes[i % DTypes.Length], 1 + i * 3_001)))).ToArray();
        try
        {
            var receives = sends.OrderBy(_ => System.Random.Shared.Next())
                .Select(async send =>
                {
                    using var received = await server.ReceiveAsync(send.Transfer, Patience);
                    AssertBitExact(send.Tensor, received);
                }).ToArray();
            await Task.WhenAll(sends.Select(send => Task.Run(() => send.Client.SendAsync(server.LocalEndPoint, send.Transfer, send.Tensor))));
            await Task.WhenAll(receives);
        }
        finally
        {
            foreach (var send in sends) send.Tensor.Dispose();
        }
    }
}
