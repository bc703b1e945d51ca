using System.Reflection;
using TorchSharp;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// `orchestrator --version` and the silo's: this build (version and commit), TorchSharp, and the libtorch it loaded.
/// Client and silo are built from one checkout, so this assembly's stamp is theirs.
/// </summary>
public static class VersionInfo
{
    /// <summary>"version+commit": the SDK stamps it into the informational version when it builds from a git checkout.</summary>
    public static string BuildVersion =>
        typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <param name="program">The program that reports it: "orchestrator", or "orchestrator silo".</param>
    public static string Describe(string program)
    {
        string build = BuildVersion;
        var (version, commit) = build.IndexOf('+') is var plus and > 0 ? (build[..plus], build[(plus + 1)..]) : (build, "unknown");
        string libtorch;
        try { libtorch = $"{torch.__version__}{(torch.cuda.is_available() ? $", CUDA with {torch.cuda.device_count()} device(s)" : ", CPU")}"; }
        catch (Exception e) when (e is DllNotFoundException or NotSupportedException or TypeInitializationException)
        {
            libtorch = $"not loaded ({e.Message})";
        }
        return $"{program} {version}\ncommit {commit}\nTorchSharp {typeof(torch).Assembly.GetName().Version}\nlibtorch {libtorch}\n.NET {Environment.Version}";
    }
}
