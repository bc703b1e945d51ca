using Orchestrator.DataChannel;

namespace Orchestrator.Grains.Tests;

public sealed class DataChannelBenchmarkTests
{
    [Fact(Timeout = 20_000)]
    public async Task The_loopback_measurement_reports_what_it_moved()
    {
        var result = await DataChannelBenchmark.MeasureLoopbackAsync(sizeBytes: (1 << 20) + 3, repetitions: 3);
        Assert.Equal(1 << 20, result.BytesPerTransfer);
        Assert.Equal(3, result.Repetitions);
        Assert.True(result.GigabytesPerSecond > 0);
    }
}
