using System.Globalization;
using System.Text.RegularExpressions;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Where a job's checkpoints live under the store's root, {root}/{job}/step-{000000123}/, and the checks that keep
/// every path inside the root: job names are plain names, and no directory on the way may be a symbolic link.
/// </summary>
public static partial class CheckpointPaths
{
    public const int MaxJobNameLength = 64;
    public const string LatestFileName = "latest";
    /// <summary>Names the checkpoint with the lowest validation loss; pruning keeps it.</summary>
    public const string BestFileName = "best";
    const string StepPrefix = "step-";

    /// <summary>Throws an <see cref="ArgumentException"/> unless the job name can be a directory name inside the root.</summary>
    public static string ValidateJobName(string? job) =>
        JobNameProblem(job) is { } problem ? throw new ArgumentException(problem, nameof(job)) : job!;

    /// <summary>Why <paramref name="job"/> cannot be a directory name inside the root, or null when it can.</summary>
    public static string? JobNameProblem(string? job) =>
        string.IsNullOrEmpty(job) || job.Length > MaxJobNameLength || !JobNamePattern().IsMatch(job) || job.Contains("..")
            ? $"job name '{job?.ReplaceLineEndings("\\n")}' must be 1-{MaxJobNameLength} letters, digits, '-', '_' or '.', not start with '.' and not contain '..'."
            : null;

    public static string StepDirectoryName(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return StepPrefix + step.ToString("D9", CultureInfo.InvariantCulture);
    }

    /// <summary>The step of a "step-000000123" directory name; false for anything else (temporary or foreign entries).</summary>
    public static bool TryParseStep(string name, out long step)
    {
        step = -1;
        return StepNamePattern().IsMatch(name) && long.TryParse(name.AsSpan(StepPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }

    /// <summary>
    /// The full path of root/parts..., which must lie strictly inside root (checked on the normalized path), with no
    /// symbolic link among the directories below root that exist.
    /// </summary>
    public static string Inside(string root, params string[] parts)
    {
        string fullRoot = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        string path = Path.GetFullPath(Path.Combine([fullRoot, .. parts]));
        if (!path.StartsWith(fullRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"'{Path.Combine(parts)}' leads outside the checkpoint root '{fullRoot}'.");
        for (string? dir = path; dir is not null && dir.Length > fullRoot.Length; dir = Path.GetDirectoryName(dir))
            if (new FileInfo(dir).LinkTarget is { } target)
                throw new ArgumentException($"'{dir}' is a link (to '{target}'); checkpoints do not follow links out of '{fullRoot}'.");
        return path;
    }

    [GeneratedRegex(@"^[A-Za-z0-9_-][A-Za-z0-9._-]*\z")]
    private static partial Regex JobNamePattern();

    [GeneratedRegex(@"^step-[0-9]{9,18}\z")]
    private static partial Regex StepNamePattern();
}
