using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Orchestrator.TestKit;

/// <summary>A program's exit code and its standard output and error, interleaved as they came.</summary>
public sealed record ChildResult(int ExitCode, string Output);

/// <summary>
/// A process this test run started (in the repository root), with its output kept for failure messages. It never outlives the tests:
/// disposing stops it (SIGTERM, then SIGKILL of its whole tree after a bounded wait), and whatever is still running
/// when the test host exits is killed then. Its pid is also appended to $ORCHESTRATOR_TEST_PIDFILE, which .ci/run
/// reads to kill leftovers should the test host itself be killed.
/// </summary>
public sealed partial class ChildProcess : IAsyncDisposable
{
    static readonly ConcurrentDictionary<int, Process> Running = new();

    static ChildProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var process in Running.Values) KillTree(process);
    };

    readonly Process process;
    readonly StringBuilder output = new();

    public string Name { get; }
    public int Id => process.Id;
    public bool HasExited => process.HasExited;
    public int ExitCode => process.ExitCode;

    public string Output
    {
        get { lock (output) return output.ToString(); }
    }

    ChildProcess(string name, Process process)
    {
        Name = name;
        this.process = process;
    }

    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = BuildMetadata.RepositoryRoot,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.Start();
        Running[process.Id] = process;
        if (Environment.GetEnvironmentVariable("ORCHESTRATOR_TEST_PIDFILE") is { Length: > 0 } pidFile)
            File.AppendAllText(pidFile, $"{process.Id}\n");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return child;
    }

    /// <summary>
    /// Runs a program to its end. One that outlives <paramref name="timeout"/> is killed with its whole tree and the
    /// test fails with what it printed.
    /// </summary>
    public static async Task<ChildResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
                                                   IDictionary<string, string>? environment = null)
    {
        await using var child = Start(Path.GetFileName(fileName), fileName, arguments, environment);
        if (!await child.WaitForExitAsync(timeout))
        {
            KillTree(child.process);
            await child.process.WaitForExitAsync();
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} ran past {timeout.TotalSeconds} s:\n{child.Output}");
        }
        await child.process.WaitForExitAsync();   // the last lines of output are in
        return new ChildResult(child.ExitCode, child.Output);
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
    }

    /// <summary>Waits for the process to exit on its own; false when <paramref name="timeout"/> passes first.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with this process's output when it exits or time runs out.</summary>
    public async Task WaitUntilAsync(Func<string, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition(Output))
        {
            if (process.HasExited) throw new InvalidOperationException($"{Name} exited ({process.ExitCode}) before {what}:\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Name}: no {what} within {timeout.TotalSeconds} s:\n{Output}");
            await Task.Delay(100);
        }
    }

    /// <summary>Sends the process <paramref name="signal"/> (its Linux number: 2 SIGINT, 15 SIGTERM, 19 SIGSTOP, 18 SIGCONT).</summary>
    public void Signal(int signal) => Assert.Equal(0, SendSignal(process.Id, signal));

    /// <summary>SIGTERM (a silo leaves the cluster gracefully), then the whole tree is killed if it is still there after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!process.HasExited)
        {
            _ = SendSignal(process.Id, 15);
            if (!await WaitForExitAsync(grace)) KillTree(process);
            await WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        Running.TryRemove(process.Id, out _);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            KillTree(process);
            process.Dispose();
        }
    }

    static void KillTree(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // already gone
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
