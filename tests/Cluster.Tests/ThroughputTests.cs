using Orchestrator.Client;

namespace Orchestrator.Cluster.Tests;

/// <summary>Rates as samples over wall time, on a clock the test moves.</summary>
public class ThroughputTests
{
    [Fact]
    public void Rates_are_samples_over_elapsed_time_with_the_warm_up_apart()
    {
        double now = 100;
        var rates = new Throughput(warmupSteps: 2, () => now);
        // Two slow warm-up steps (5 s each), then 60 steps of 0.1 s and 0.3 s in turn: a mean of per-step rates would
        // say (640 + 213) / 2 = 427 samples/s; the honest rate is 64 samples per 0.2 s = 320.
        foreach (double seconds in new[] { 5.0, 5.0 }.Concat(Enumerable.Range(0, 60).Select(i => i % 2 == 0 ? 0.1 : 0.3)))
        {
            now += seconds;
            rates.Add(64);
        }
        Assert.Equal(62, rates.Steps);
        Assert.Equal(64 * 62, rates.Samples);
        Assert.Equal(10, rates.WarmupSeconds, 9);
        Assert.Equal(22, rates.ElapsedSeconds, 9);
        Assert.Equal(64 * 62 / 22.0, rates.SamplesPerSecond, 9);
        Assert.Equal(320, rates.SteadySamplesPerSecond!.Value, 9);
        Assert.Equal(200, rates.SteadyMsPerStep!.Value, 9);
        Assert.Equal(320, rates.RecentSamplesPerSecond, 9);       // the last 50 steps: 25 pairs of 0.1 + 0.3 s
        Assert.Equal(0.2, rates.RecentSecondsPerStep, 9);
    }

    [Fact]
    public void Before_the_warm_up_ends_there_is_no_steady_rate_and_the_window_starts_at_the_start()
    {
        double now = 0;
        var rates = new Throughput(warmupSteps: 10, () => now);
        Assert.Equal(0, rates.RecentSamplesPerSecond);
        now = 2;
        rates.Add(100);
        Assert.Equal(50, rates.RecentSamplesPerSecond, 9);
        Assert.Null(rates.SteadySamplesPerSecond);
        Assert.Null(rates.SteadyMsPerStep);
        Assert.Equal(2, rates.WarmupSeconds, 9);
    }

    [Theory]
    [InlineData(5, 1)]
    [InlineData(300, 30)]
    [InlineData(20_000, 100)]
    public void The_warm_up_is_a_tenth_of_the_run_within_1_to_100_steps(long steps, int warmup) =>
        Assert.Equal(warmup, Throughput.WarmupFor(steps));
}
