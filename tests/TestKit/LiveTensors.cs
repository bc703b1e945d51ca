using System.Runtime;
using static TorchSharp.torch;

namespace Orchestrator.TestKit;

/// <summary>
/// Counts live TorchSharp tensor handles (Tensor.TotalCount, process-wide) while no garbage collection can run.
/// A tensor that code forgets to dispose is then still counted: its finalizer, which would quietly release it,
/// never gets the chance. Garbage from earlier tests is finalized first so it cannot disturb the count.
/// </summary>
public static class LiveTensors
{
    public static long Count => Tensor.TotalCount;

    public static async Task WithoutCollectionAsync(Func<Task> body, long budgetBytes = 240L << 20)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.True(GC.TryStartNoGCRegion(budgetBytes), "could not suspend garbage collection");
        try
        {
            await body();
            Assert.True(GCSettings.LatencyMode == GCLatencyMode.NoGCRegion,
                "a garbage collection ran while counting tensors, so finalizers may have hidden a leak: raise the budget");
        }
        finally
        {
            if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }

    public static void WithoutCollection(Action body) =>
        WithoutCollectionAsync(() => { body(); return Task.CompletedTask; }).GetAwaiter().GetResult();
}
