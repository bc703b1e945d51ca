using System.Diagnostics;
using Orchestrator.Connection;
using Orchestrator.DataChannel;
using Orchestrator.Grains.Diagnostics;
using Orchestrator.Grains.Hosting;
using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>One payload size: Orleans messages between two silos and the TCP data channel, in GB/s of payload delivered.</summary>
public sealed record TransportRow(long Bytes, double MessageGBps, double ChannelGBps);

/// <summary>
/// The transports side by side in one run, on this machine's loopback: a message payload echoed by a grain on a second
/// silo of this process (its bytes cross silos twice per call), and the data channel sending the same bytes. Both are
/// warmed up as many times per size before they are timed, so neither column times the JIT more than the other.
/// </summary>
public static class TransportBenchmark
{
    public static async Task<List<TransportRow>> RunAsync(IReadOnlyList<long> sizes, int repetitions,
        int warmUps = DataChannelBenchmark.DefaultWarmUps, DataChannelOptions? channelOptions = null, Action<string>? progress = null)
    {
        var options = new ClusterConnectionOptions { MaxMessageMB = (int)Math.Min(2047, (sizes.Max() >> 20) + 4) };
        await using var cluster = await ClusterConnection.StartEmbeddedAsync(options, "cpu", silos: 2, verbose: false);
        var probe = cluster.Grains.GetGrain<ITransportProbeGrain>(new WorkerKey("embedded-1", "cpu", "transport-probe", 0).ToString());
        var message = new MessageTensorTransport(long.MaxValue);
        var rows = new List<TransportRow>();
        foreach (long bytes in sizes)
        {
            progress?.Invoke($"{bytes >> 20} MiB");
            TensorPayload payload;
            using (var tensor = randn([Math.Max(1, bytes / 4)])) payload = message.Pack(tensor);
            // The first call also activates the grain and opens the silos' connections.
            for (int i = 0; i < warmUps; i++) await probe.EchoAsync(payload);
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < repetitions; i++) await probe.EchoAsync(payload);
            double messageGBps = 2.0 * payload.Bytes * repetitions / watch.Elapsed.TotalSeconds / 1e9;
            var channel = await DataChannelBenchmark.MeasureLoopbackAsync(payload.Bytes, repetitions, warmUps, channelOptions);
            rows.Add(new TransportRow(payload.Bytes, messageGBps, channel.GigabytesPerSecond));
        }
        return rows;
    }

    public static string ToMarkdown(IReadOnlyList<TransportRow> rows, int repetitions, int warmUps = DataChannelBenchmark.DefaultWarmUps,
        int connections = DataChannelOptions.DefaultConnections)
    {
        var lines = new List<string>
        {
            $"loopback on this machine, {repetitions} transfers per size after {warmUps} warm-ups each, the channel over {connections} " +
            "connections; GB/s of payload delivered",
            "",
            "| payload | Orleans messages between silos | TCP data channel | channel / messages |",
            "| ---: | ---: | ---: | ---: |",
        };
        lines.AddRange(rows.Select(r => $"| {r.Bytes / 1048576.0:F0} MiB | {r.MessageGBps:F2} GB/s | {r.ChannelGBps:F2} GB/s | {r.ChannelGBps / r.MessageGBps:F1}x |"));
        return string.Join(Environment.NewLine, lines);
    }
}
