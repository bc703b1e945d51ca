using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>What one throughput measurement saw.</summary>
public readonly record struct ChannelThroughput(long BytesPerTransfer, int Repetitions, TimeSpan Elapsed)
{
    /// <summary>Payload gigabytes (10^9 bytes) per second, one way.</summary>
    public double GigabytesPerSecond => BytesPerTransfer * (double)Repetitions / Elapsed.TotalSeconds / 1e9;
}

/// <summary>Measures the data channel's one-way throughput over loopback, to set beside the Orleans message rate.</summary>
public static class DataChannelBenchmark
{
    /// <summary>
    /// Untimed transfers before the timed ones: one opens the connections and fills the receive pool, and a few more
    /// let tiered compilation replace the unoptimized code of the paths a transfer takes (the first transfers of a
    /// process run it); measurements set beside this one should warm up as many times.
    /// </summary>
    public const int DefaultWarmUps = 3;

    /// <summary>
    /// Sends a float32 CPU tensor of <paramref name="sizeBytes"/> (rounded down to whole elements) from a client to a
    /// server on 127.0.0.1 <paramref name="repetitions"/> times after <paramref name="warmUps"/> untimed ones, timing from
    /// the first timed send until the last tensor is received. Sender and receiver share this machine's cores, so a real
    /// link between hosts may do better.
    /// </summary>
    public static async Task<ChannelThroughput> MeasureLoopbackAsync(long sizeBytes, int repetitions, int warmUps = DefaultWarmUps,
        DataChannelOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sizeBytes, sizeof(float));
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmUps);
        options ??= DataChannelOptions.Default;
        // Both ends live in this process, so a secret of its own serves when none is given.
        options = options with
        {
            MaxPayloadBytes = Math.Max(sizeBytes, options.MaxPayloadBytes),
            Secret = options.Secret ?? RandomNumberGenerator.GetBytes(32),
        };
        await using var server = new DataChannelServer(new IPEndPoint(IPAddress.Loopback, 0), options);
        using var client = new DataChannelClient(options);
        using var tensor = torch.rand(sizeBytes / sizeof(float));
        using var expected = server.Expect(tensor.NumberOfElements * sizeof(float));

        for (int i = 0; i < warmUps; i++)
            await RoundTripAsync(server, client, tensor, cancellation).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repetitions; i++)
            await RoundTripAsync(server, client, tensor, cancellation).ConfigureAwait(false);
        return new ChannelThroughput(tensor.NumberOfElements * sizeof(float), repetitions, clock.Elapsed);
    }

    static async Task RoundTripAsync(DataChannelServer server, DataChannelClient client, torch.Tensor tensor, CancellationToken cancellation)
    {
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, TimeSpan.FromMinutes(1), cancellation);
        await client.SendAsync(server.LocalEndPoint, transfer, tensor, cancellation).ConfigureAwait(false);
        using var received = await receive.ConfigureAwait(false);
    }
}
