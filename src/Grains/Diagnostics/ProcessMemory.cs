namespace Orchestrator.Grains.Diagnostics;

/// <summary>
/// One process's memory: resident host memory (what the operating system charges it, native and managed), and the
/// managed heap after the last garbage collection. Read after a full collection, so that garbage waiting for the
/// collector does not look like growth.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ProcessMemory([property: Id(0)] double ResidentMiB, [property: Id(1)] double ManagedHeapMiB)
{
    /// <summary>This process's memory, after a full blocking collection (and the finalizers it queued).</summary>
    public static ProcessMemory Read()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var status = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        double resident = long.Parse(status.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        return new ProcessMemory(resident, GC.GetGCMemoryInfo().HeapSizeBytes / 1048576.0);
    }
}
