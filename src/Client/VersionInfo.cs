using System.Reflection;
using TorchSharp;

namespace Orchestrator.Client;

/// <summary>`orchestrator --version`: this build (version and commit), TorchSharp, and the libtorch it loaded.</summary>
public static class VersionInfo
{
    public static string Describe()
    {
        // The SDK stamps "version+commit" into the informational version when it builds from a git checkout.
        string build = typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var (version, commit) = build.IndexOf('+') is var plus and > 0 ? (build[..plus], build[(plus + 1)..]) : (build, "unknown");
        string libtorch;
        try { libtorch = $"{torch.__version__}{(torch.cuda.is_available() ? $", CUDA with {torch.cuda.device_count()} device(s)" : ", CPU")}"; }
        catch (Exception e) when (e is DllNotFoundException or NotSupportedException or TypeInitializationException)
        {
            libtorch = $"not loaded ({e.Message})";
        }
        return $"orchestrator {version}\ncommit {commit}\nTorchSharp {typeof(torch).Assembly.GetName().Version}\nlibtorch {libtorch}\n.NET {Environment.Version}";
    }
}
