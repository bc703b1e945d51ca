namespace Orchestrator.Client;

/// <summary>
/// Honest rates: samples over elapsed wall time, never a mean of per-step rates (which a few fast steps inflate). The
/// live rate and the ETA come from the last <see cref="Window"/> steps; the summary's from the whole run, and from the
/// run after its first <paramref name="warmupSteps"/> steps (JIT, allocator and kernel caches warming up), reported
/// apart. Memory stays bounded however long the run.
/// </summary>
public sealed class Throughput
{
    public const int Window = 50;
    readonly int warmupSteps;
    readonly Func<double> seconds;
    readonly Queue<(double At, long Samples)> recent = new();
    readonly double start;
    (double At, long Samples)? warm;   // when the warm-up ended, and the samples until then
    double now;

    public long Steps { get; private set; }
    public long Samples { get; private set; }

    /// <param name="seconds">The clock (seconds, monotonic): a stopwatch's elapsed time unless a test gives one.</param>
    public Throughput(int warmupSteps, Func<double>? seconds = null)
    {
        this.warmupSteps = Math.Max(1, warmupSteps);
        if (seconds is null)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            seconds = () => watch.Elapsed.TotalSeconds;
        }
        this.seconds = seconds;
        now = start = seconds();
        recent.Enqueue((start, 0));
    }

    /// <summary>The warm-up that suits a run of <paramref name="steps"/> steps: a tenth of it, 1 to 100 steps.</summary>
    public static int WarmupFor(long steps) => (int)Math.Clamp(steps / 10, 1, 100);

    /// <summary>A step of <paramref name="batch"/> samples has just returned.</summary>
    public void Add(int batch)
    {
        now = seconds();
        (Steps, Samples) = (Steps + 1, Samples + batch);
        recent.Enqueue((now, Samples));
        if (recent.Count > Window + 1) recent.Dequeue();
        if (Steps == warmupSteps) warm = (now, Samples);
    }

    public double ElapsedSeconds => now - start;
    public double WarmupSeconds => warm is { } w ? w.At - start : ElapsedSeconds;
    public int WarmupSteps => warmupSteps;

    /// <summary>Samples/s over the last <see cref="Window"/> steps (fewer at the start).</summary>
    public double RecentSamplesPerSecond => Rate(recent.Peek(), (now, Samples));

    /// <summary>Seconds per step over the last <see cref="Window"/> steps, for the ETA.</summary>
    public double RecentSecondsPerStep => recent.Count < 2 ? 0 : (now - recent.Peek().At) / (recent.Count - 1);

    /// <summary>Samples/s over the whole run.</summary>
    public double SamplesPerSecond => Rate((start, 0), (now, Samples));

    /// <summary>Samples/s after the warm-up; null until a step after it has returned.</summary>
    public double? SteadySamplesPerSecond => warm is { } w && Samples > w.Samples ? Rate(w, (now, Samples)) : null;

    /// <summary>Wall-clock ms per step after the warm-up; null until a step after it has returned.</summary>
    public double? SteadyMsPerStep => warm is { } w && Steps > warmupSteps ? (now - w.At) * 1000 / (Steps - warmupSteps) : null;

    static double Rate((double At, long Samples) from, (double At, long Samples) to) =>
        to.At > from.At ? (to.Samples - from.Samples) / (to.At - from.At) : 0;
}
