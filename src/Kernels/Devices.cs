using TorchSharp;

namespace Orchestrator.Kernels;

/// <summary>Device names ("cpu", "cuda", "cuda:1") to TorchSharp devices, with errors a user can act on.</summary>
public static class Devices
{
    /// <summary>"cpu" or "cuda:N" (N >= 0, no sign or leading zeros): the device names this system schedules on.</summary>
    public static bool IsName(string? name) =>
        name == "cpu" || (name is not null && name.StartsWith("cuda:", StringComparison.Ordinal)
                          && int.TryParse(name.AsSpan(5), out int ordinal) && ordinal >= 0 && name[5..] == ordinal.ToString());

    /// <summary>"cuda:N": a GPU of this system's naming.</summary>
    public static bool IsGpuName(string? name) => IsName(name) && name != "cpu";

    /// <summary>"cpu", "cuda" or "cuda:N" to a device; refuses CUDA when TorchSharp has none and ordinals this host lacks.</summary>
    public static torch.Device Parse(string name)
    {
        var text = name.Trim().ToLowerInvariant();
        if (text == "cpu") return torch.CPU;
        if (text == "cuda" || text.StartsWith("cuda:"))
        {
            int ordinal = 0;
            if (text.Length > 4 && (!int.TryParse(text[5..], out ordinal) || ordinal < 0))
                throw new ArgumentException($"device '{name}' has no valid GPU ordinal; write cuda:0, cuda:1, ...");
            if (!torch.cuda.is_available())
                throw new InvalidOperationException(
                    $"device '{name}' asked for, but CUDA is not available to TorchSharp. Build with -p:TorchBackend=system " +
                    "and start through the with-system-torch launcher so a CUDA libtorch is found (README: GPU hosts).");
            if (ordinal >= torch.cuda.device_count())
                throw new ArgumentException($"device '{name}' does not exist: this host has {torch.cuda.device_count()} GPU(s).");
            return new torch.Device(DeviceType.CUDA, ordinal);
        }
        throw new ArgumentException($"device '{name}' is not recognised; use cpu or cuda:N.");
    }
}
