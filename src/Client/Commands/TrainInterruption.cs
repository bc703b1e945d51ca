using System.Text.RegularExpressions;
using Orchestrator.Grains;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Client.Commands;

/// <summary>What `train` tells the user when a signal stops it: what happens now, what was saved, and how to continue.</summary>
static partial class TrainInterruption
{
    /// <summary>Said the moment a signal arrives.</summary>
    public static string Received(StopSignals.Signal signal, bool again, JobSpec spec) => again
        ? $"{signal.Name} again: aborting now, without waiting for the step in progress"
        : $"{signal.Name}: stopping after the step in progress" +
          (spec.Checkpoint.Directory is null ? "; the job has no --checkpoint-dir, so its progress will not be saved" : ", then saving a checkpoint") +
          "; a second signal aborts at once";

    /// <summary>After the job stopped at a step boundary (and saved, when it has a checkpoint directory).</summary>
    public static string Stopped(TrainSettings settings, JobSpec spec, JobStatus status, StopSignals.Signal signal)
    {
        string stopped = $"unfinished: job '{spec.Name}' stopped by {signal.Name} at step {status.StepsDone} of {spec.Steps}; ";
        return status.LastCheckpointStep is { } step && spec.Checkpoint.Directory is { } root
            ? stopped + $"its checkpoint at step {step} is{Environment.NewLine}  {Path.Combine(root, spec.Name, CheckpointPaths.StepDirectoryName(step))}" +
              $"{Environment.NewLine}Continue with:{Environment.NewLine}  {ResumeCommand(settings, spec, root)}"
            : stopped + "it has no --checkpoint-dir, so the progress since it started is not saved.";
    }

    /// <summary>After a second signal: the job was left where it was, to its coordinator's lease or to the end of this process's silo.</summary>
    public static string Aborted(TrainSettings settings, JobSpec spec)
    {
        string name = spec.Name;
        if (settings.HasCluster)
            return $"aborted: job '{name}' is left to its coordinator, which " + (spec.Checkpoint.Directory is { } root
                ? $"checkpoints it at its last completed step and releases its devices when its lease of {spec.LeaseSeconds} s runs out (--lease); " +
                  $"then continue with:{Environment.NewLine}  {ResumeCommand(settings, spec, root)}"
                : $"releases its devices when its lease of {spec.LeaseSeconds} s runs out (--lease); the job has no --checkpoint-dir, so its progress is not saved.");
        string gone = $"aborted: the silo of job '{name}' ran in this process and stopped with it, ";
        if (spec.Checkpoint.Directory is not { } directory) return gone + "and the job has no --checkpoint-dir, so its progress is lost.";
        return CheckpointedJob.Find(directory, name) is { } newest
            ? gone + $"so the steps after its newest checkpoint (step {newest.Step}) are lost; continue from that one with:{Environment.NewLine}  {ResumeCommand(settings, spec, directory)}"
            : gone + "and it had no checkpoint yet (--checkpoint-every saves them while it trains), so its progress is lost.";
    }

    /// <summary>
    /// `train --checkpoint-dir DIR --name JOB --resume`, which reads the rest from the checkpoint, with the options of
    /// the silos this run started; a cluster's connection options are named, not repeated (a Redis password is one).
    /// </summary>
    static string ResumeCommand(TrainSettings settings, JobSpec spec, string root)
    {
        List<string> words = ["orchestrator", "train", "--checkpoint-dir", root, "--name", spec.Name, "--resume"];
        if (settings.HasCluster)
        {
            // A directory this client cannot read leaves the model settings to the options, as when the job started.
            string model = Directory.Exists(root) ? "" : " with the model options this run was given";
            return $"{string.Join(' ', words.Select(Quoted))}{model}, and this run's cluster options (--gateway or --redis, TLS)";
        }
        if (settings.LocalDevices != "cpu") words.AddRange(["--local-devices", settings.LocalDevices]);
        if (settings.LocalSilos != 1) words.AddRange(["--local-silos", $"{settings.LocalSilos}"]);
        if (settings.LocalProcesses != 0) words.AddRange(["--local-processes", $"{settings.LocalProcesses}"]);
        return string.Join(' ', words.Select(Quoted));
    }

    /// <summary>A word as a POSIX shell reads it back: bare when it is plain, else in single quotes.</summary>
    static string Quoted(string word) => PlainWord().IsMatch(word) ? word : $"'{word.Replace("'", "'\\''")}'";

    [GeneratedRegex(@"^[A-Za-z0-9_./:=,@+-]+\z")]
    private static partial Regex PlainWord();
}
