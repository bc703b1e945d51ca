using Orchestrator.Grains.Placement;

namespace Orchestrator.Grains.Diagnostics;

[DevicePlacement]
public sealed class MemoryProbeGrain : Grain, IMemoryProbeGrain
{
    // A full collection blocks for a while: off the scheduler's threads.
    public Task<ProcessMemory> ReadAsync() => Task.Run(ProcessMemory.Read);
}
