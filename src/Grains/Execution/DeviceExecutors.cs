using System.Collections.Concurrent;

namespace Orchestrator.Grains.Execution;

/// <summary>The silo's device executors, one per device, created on first use. A DI singleton.</summary>
public sealed class DeviceExecutors : IDisposable
{
    readonly ConcurrentDictionary<string, Lazy<DeviceExecutor>> executors = new();

    public DeviceExecutor For(string device) =>
        executors.GetOrAdd(device, d => new Lazy<DeviceExecutor>(() => new DeviceExecutor(d))).Value;

    public void Dispose()
    {
        foreach (var executor in executors.Values.Where(e => e.IsValueCreated)) executor.Value.Dispose();
    }
}
