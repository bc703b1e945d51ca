using System.Runtime;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>
/// Counts live TorchSharp tensor handles (Tensor.TotalCount, process-wide) while no garbage collection can run.
/// A tensor that code forgets to dispose is then still counted: its finalizer, which would quietly release it,
/// never gets the chance. Garbage from earlier tests is finalized first so it cannot disturb the count.
/// </summary>
public static class LiveTensors
{
    public static void WithoutCollection(Action body, long budgetBytes = 240L << 20)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.True(GC.TryStartNoGCRegion(budgetBytes), "could not suspend garbage collection");
        try { body(); }
        finally
        {
            if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }

    public static long Count => Tensor.TotalCount;
}
