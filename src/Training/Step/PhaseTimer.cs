using System.Diagnostics;

namespace Orchestrator.Training;

/// <summary>Wall-clock milliseconds of consecutive phases.</summary>
public sealed class PhaseTimer
{
    readonly long start = Stopwatch.GetTimestamp();
    long last = Stopwatch.GetTimestamp();

    /// <summary>Milliseconds since the previous lap (or the start).</summary>
    public double Lap()
    {
        long now = Stopwatch.GetTimestamp();
        double ms = Stopwatch.GetElapsedTime(last, now).TotalMilliseconds;
        last = now;
        return ms;
    }

    public double TotalMs => Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}
