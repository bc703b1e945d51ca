using System.Diagnostics;
using System.Text;

namespace Orchestrator.Kernels.Tests;

/// <summary>A program's exit code and its standard output and error, interleaved as they came.</summary>
public sealed record ChildResult(int ExitCode, string Output);

/// <summary>
/// Runs a program to its end for a test. One that outlives <c>timeout</c> is killed with its whole tree and the test
/// fails with what it printed. Its pid goes to $ORCHESTRATOR_TEST_PIDFILE, from which .ci/run kills leftovers should
/// the test host itself die.
/// </summary>
public static class ChildRun
{
    public static async Task<ChildResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
                                                   IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = BuildInfo.RepositoryRoot,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;

        var output = new StringBuilder();
        void Append(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
        }
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        if (Environment.GetEnvironmentVariable("ORCHESTRATOR_TEST_PIDFILE") is { Length: > 0 } pidFile)
            File.AppendAllText(pidFile, $"{process.Id}\n");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output) throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} ran past {timeout.TotalSeconds} s:\n{output}");
        }
        await process.WaitForExitAsync();   // the last lines of output are in
        lock (output) return new ChildResult(process.ExitCode, output.ToString());
    }
}
