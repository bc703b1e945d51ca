namespace Orchestrator.Grains.Diagnostics;

/// <summary>
/// Reads the memory of the process of the silo it is pinned to ("{silo}/{device}/memory-probe/{n}", placed like a
/// worker), so that a long run can show every silo process's memory staying flat.
/// </summary>
public interface IMemoryProbeGrain : IGrainWithStringKey
{
    Task<ProcessMemory> ReadAsync();
}
