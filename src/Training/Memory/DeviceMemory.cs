using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// Memory a new job may still take on a device, with where the figure comes from: a GPU's free memory (the driver's),
/// or for the CPU the kernel's MemAvailable, capped by this process's cgroup limit (containers, systemd's MemoryMax),
/// which is what actually kills an oversized silo.
/// </summary>
public static class DeviceMemory
{
    public static (long Bytes, string Source) Available(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA)
            return (Kernels.Cuda.CudaDevice.For(device.index).MemoryInfo().Free, $"free memory of cuda:{device.index}");
        long? meminfo = MemAvailable(), cgroup = CgroupRoom();
        return (meminfo, cgroup) switch
        {
            ({ } m, { } c) when c < m => (c, "this process's cgroup memory limit less its usage"),
            ({ } m, _) => (m, "MemAvailable in /proc/meminfo"),
            (null, { } c) => (c, "this process's cgroup memory limit less its usage"),
            _ => (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, ".NET's total available memory"),
        };
    }

    static long? MemAvailable()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;   // "MemAvailable: 123 kB"
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>cgroup v2: memory.max - memory.current of this process's group; null without a limit ("max") or cgroup v2.</summary>
    static long? CgroupRoom()
    {
        try
        {
            var group = File.ReadLines("/proc/self/cgroup").FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..];
            if (group is null) return null;
            var directory = Path.Combine("/sys/fs/cgroup", group.TrimStart('/'));
            var max = File.ReadAllText(Path.Combine(directory, "memory.max")).Trim();
            if (max == "max") return null;
            return long.Parse(max) - long.Parse(File.ReadAllText(Path.Combine(directory, "memory.current")).Trim());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
