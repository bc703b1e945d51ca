using System.Text.RegularExpressions;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// `orchestrator train` processes on their embedded silo, stopped by real signals once they printed progress: the
/// job stops at a step boundary, saves a checkpoint that verifies, says how to continue, exits 128 + the signal, and
/// `train --resume` continues from that checkpoint; a second signal aborts at once.
/// </summary>
public partial class TrainSignalTests : IDisposable
{
    const int Sigint = 2, Sigterm = 15, Sigcont = 18, Sigstop = 19;
    static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    /// <summary>A small job of many steps: a progress line every 500 steps, and far from done when a signal comes.</summary>
    static readonly string[] Job = ["--groups", "3", "--features", "8", "--input", "8", "--hidden", "16", "--output", "4", "--batch-size", "32", "--steps", "5000"];

    readonly string checkpoints = Directory.CreateTempSubdirectory("orchestrator-signal-test").FullName;
    readonly string name = $"signals-{Guid.NewGuid():N}";

    public void Dispose() => Directory.Delete(checkpoints, recursive: true);

    /// <summary>The CLI with SIGINT at its default: a shell's background jobs ignore it, and children inherit that.</summary>
    static ChildProcess Train(params string[] arguments) =>
        ChildProcess.Start("train", "env", ["--default-signal=INT", "dotnet", Build.ClientDll, "train", .. arguments]);

    static async Task<string> Finished(ChildProcess train, int expectedCode)
    {
        Assert.True(await train.WaitForExitAsync(Patience), $"train did not exit:\n{train.Output}");
        Assert.True(train.ExitCode == expectedCode, $"exit code {train.ExitCode}, not {expectedCode}:\n{train.Output}");
        return train.Output;
    }

    static Task Progress(ChildProcess train) =>
        train.WaitUntilAsync(output => ProgressLine().IsMatch(output), Patience, "progress line");

    string ResumeCommand => $"orchestrator train --checkpoint-dir {checkpoints} --name {name} --resume";

    [Theory]
    [InlineData(Sigterm, "SIGTERM", 143)]
    [InlineData(Sigint, "SIGINT", 130)]
    public async Task A_signal_stops_at_a_step_boundary_with_a_checkpoint_that_resume_continues_from(int signal, string signalName, int exitCode)
    {
        string output;
        await using (var train = Train([.. Job, "--checkpoint-dir", checkpoints, "--name", name]))
        {
            await Progress(train);
            train.Signal(signal);
            output = await Finished(train, exitCode);
        }
        Assert.Contains($"{signalName}: stopping after the step in progress, then saving a checkpoint", output);
        var stopped = Regex.Match(output, $@"unfinished: job '{name}' stopped by {signalName} at step (\d+) of 5000; its checkpoint at step (\d+) is\s+(\S+)\s");
        Assert.True(stopped.Success, output);
        long step = long.Parse(stopped.Groups[1].Value);
        Assert.Equal(step, long.Parse(stopped.Groups[2].Value));
        Assert.InRange(step, 500, 4999);
        Assert.Contains(ResumeCommand, output);
        var store = new CheckpointStore(checkpoints);
        Assert.Equal(step, store.LatestStep(name));
        var checkpoint = store.Open(name, step);
        Assert.Equal(checkpoint.Directory, stopped.Groups[3].Value);
        checkpoint.Verify();

        // Only what changes is given: the model comes from the checkpoint's manifest.
        await using var resumed = Train("--checkpoint-dir", checkpoints, "--name", name, "--resume", "--steps", $"{step + 3}");
        output = await Finished(resumed, 0);
        Assert.Contains($"resumed from the checkpoint at step {step}", output);
        Assert.Contains($"step {step + 3}/{step + 3}", output);
        Assert.DoesNotContain("unfinished", output);
        Assert.Equal(step + 3, store.LatestStep(name));
        Assert.Null(checkpoint.Manifest.Job.ModelDifference(store.Open(name).Manifest.Job));
    }

    [Fact]
    public async Task Without_a_checkpoint_directory_a_signal_says_the_progress_is_not_saved()
    {
        await using var train = Train([.. Job, "--name", name]);
        await Progress(train);
        train.Signal(Sigint);
        var output = await Finished(train, 130);
        Assert.Contains("SIGINT: stopping after the step in progress; the job has no --checkpoint-dir, so its progress will not be saved", output);
        Assert.Matches($@"unfinished: job '{name}' stopped by SIGINT at step \d+ of 5000; it has no --checkpoint-dir, so the progress since it started is not saved\.", output);
        Assert.Empty(Directory.EnumerateFileSystemEntries(checkpoints));
    }

    [Fact]
    public async Task A_second_signal_aborts_without_stopping_the_job_and_names_its_newest_checkpoint()
    {
        await using var train = Train([.. Job, "--checkpoint-dir", checkpoints, "--checkpoint-every", "100", "--name", name]);
        await Progress(train);
        // Both arrive together, while a step is surely still running: the process takes them when it continues.
        train.Signal(Sigstop);
        train.Signal(Sigint);
        train.Signal(Sigterm);
        train.Signal(Sigcont);
        Assert.True(await train.WaitForExitAsync(Patience), $"train did not exit:\n{train.Output}");
        var output = train.Output;
        var first = Regex.Match(output, @"(SIGINT|SIGTERM): stopping after the step in progress");
        Assert.True(first.Success, output);
        var (firstCode, second) = first.Groups[1].Value == "SIGINT" ? (130, "SIGTERM") : (143, "SIGINT");
        Assert.True(train.ExitCode == firstCode, $"exit code {train.ExitCode}, not {firstCode}:\n{output}");
        Assert.Contains($"{second} again: aborting now, without waiting for the step in progress", output);
        Assert.DoesNotContain("unfinished", output);
        var aborted = Regex.Match(output, $@"aborted: the silo of job '{name}' ran in this process and stopped with it, so the steps after its newest checkpoint \(step (\d+)\) are lost");
        Assert.True(aborted.Success, output);
        Assert.DoesNotContain("Exception", output);
        Assert.Contains(ResumeCommand, output);
        long newest = long.Parse(aborted.Groups[1].Value);
        Assert.InRange(newest, 500, 4999);   // the progress line at step 500 came after its checkpoint
        new CheckpointStore(checkpoints).Open(name, newest).Verify();
    }

    [GeneratedRegex(@"^step \d+/5000 ", RegexOptions.Multiline)]
    private static partial Regex ProgressLine();
}
