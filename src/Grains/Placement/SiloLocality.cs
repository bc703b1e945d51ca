namespace Orchestrator.Grains.Placement;

/// <summary>
/// Where this silo runs, advertised in its metadata so that senders pick the cheapest way to hand tensors over:
/// silos of one process share tensor handles, processes of one host share GPU memory through CUDA IPC.
/// </summary>
public static class SiloLocality
{
    public const string HostKey = "host";
    public const string ProcessKey = "process";

    /// <summary>This machine: its name and, on Linux, the boot id (two hosts or containers may share a name, not a boot).</summary>
    public static string Host { get; } = $"{Environment.MachineName}/{BootId()}";

    /// <summary>This process: unique for its lifetime, also across a restart that reuses the pid.</summary>
    public static string Process { get; } = $"{Host}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    static string BootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (IOException)
        {
            return "unknown-boot";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown-boot";
        }
    }
}
