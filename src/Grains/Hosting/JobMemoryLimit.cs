using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// What a new job may take on one of this silo's devices: the device's available memory (<see cref="DeviceMemory"/>),
/// capped by Silo:MaxJobMemoryMB when it is set, so that one job cannot take a shared machine whole.
/// </summary>
public sealed class JobMemoryLimit(long maxJobMemoryMB)
{
    public static JobMemoryLimit None { get; } = new(0);

    /// <summary>The bytes a job may take on <paramref name="device"/>, and where that figure comes from.</summary>
    public (long Bytes, string Source) Available(Device device)
    {
        var (free, source) = DeviceMemory.Available(device);
        long cap = maxJobMemoryMB << 20;
        return maxJobMemoryMB > 0 && cap < free ? (cap, $"Silo:MaxJobMemoryMB = {maxJobMemoryMB}") : (free, source);
    }
}
