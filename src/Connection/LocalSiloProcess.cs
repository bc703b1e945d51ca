using System.Diagnostics;
using System.Runtime.InteropServices;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Connection;

/// <summary>
/// A silo host process this client starts beside its embedded silos, joined to them (localhost membership through the
/// primary's port), so that one machine runs a cluster of several processes: on a GPU host, silo processes sharing a
/// GPU exchange tensors through CUDA IPC. Stopped with the connection: SIGTERM, then killed after a grace period.
/// </summary>
public sealed partial class LocalSiloProcess : IAsyncDisposable
{
    /// <summary>Overrides where the silo host is: its executable, or its Orchestrator.Silo.dll (run with dotnet).</summary>
    public const string HostVariable = "ORCHESTRATOR_SILO_HOST";
    const int OutputLines = 200;

    readonly Process process;
    readonly Queue<string> output = new();
    public string Name { get; }
    public int Id => process.Id;

    LocalSiloProcess(string name, Process process) => (Name, this.process) = (name, process);

    /// <summary>The last lines the process printed, for error messages.</summary>
    public string Output
    {
        get { lock (output) return string.Join(Environment.NewLine, output); }
    }

    public bool HasExited => process.HasExited;

    /// <param name="secret">The cluster secret, passed by environment (Cluster__Secret): a command line is readable by every user of the host.</param>
    /// <param name="tls">The embedded silos' TLS: passed through the environment (Cluster__Tls__...), which keeps its password off the command line.</param>
    public static LocalSiloProcess Start(string name, string devices, int primarySiloPort, int siloPort, int gatewayPort, int maxMessageMB, string secret,
        ClusterTlsOptions tls)
    {
        var (file, prefix) = Locate();
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in prefix.Concat([
                     "--name", name, "--devices", devices, "--primary-port", $"{primarySiloPort}", "--silo-port", $"{siloPort}",
                     "--gateway-port", $"{gatewayPort}", "--max-message-mb", $"{maxMessageMB}", "--parent-pid", $"{Environment.ProcessId}"]))
            info.ArgumentList.Add(argument);
        info.Environment["Cluster__Secret"] = secret;
        // Exactly the client's TLS: settings this process inherited must not mix into it.
        foreach (var inherited in info.Environment.Keys.Where(k => k.StartsWith(ClusterTlsOptions.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(inherited);
        foreach (var (key, value) in tls.ToEnvironment()) info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        var silo = new LocalSiloProcess(name, process);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>
    /// The silo host: <see cref="HostVariable"/>, else beside this program (a package from deploy/package.sh has both),
    /// else the build output of src/Silo next to this one's (a run from source: src/Client/bin/... -> src/Silo/bin/...).
    /// </summary>
    static (string File, string[] Prefix) Locate()
    {
        var here = AppContext.BaseDirectory;
        var sourceBuild = here.Replace($"{Path.DirectorySeparatorChar}Client{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}",
            $"{Path.DirectorySeparatorChar}Silo{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}");
        var candidates = Environment.GetEnvironmentVariable(HostVariable) is { Length: > 0 } configured
            ? [configured]
            : new[] { Path.Combine(here, "Orchestrator.Silo"), Path.Combine(here, "Orchestrator.Silo.dll"), Path.Combine(sourceBuild, "Orchestrator.Silo.dll") }
                .Distinct().ToArray();
        foreach (var path in candidates.Where(File.Exists))
            return path.EndsWith(".dll", StringComparison.Ordinal) ? ("dotnet", [path]) : (path, []);
        throw new FileNotFoundException(
            $"the silo host is not at {string.Join(" or ", candidates)}: run the package from deploy/package.sh, which has it beside this " +
            $"program, build src/Silo, or set {HostVariable} to its Orchestrator.Silo executable or dll.");
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (output)
        {
            output.Enqueue(line);
            if (output.Count > OutputLines) output.Dequeue();
        }
    }

    /// <summary>SIGTERM, so the silo leaves the cluster cleanly; SIGKILL when it is still there after the grace period.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            _ = SendSignal(process.Id, Terminate);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
        process.Dispose();
    }

    const int Terminate = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
