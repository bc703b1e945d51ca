namespace Orchestrator.Grains.Hosting;

/// <summary>
/// The directories under which this silo reads data files and writes checkpoints for clients (Silo:PathRoots). A path
/// a client sends is resolved (symbolic links included) and refused unless it lies under one of them, before the silo
/// touches it: a client must not make a silo read /etc/shadow, or learn whether a file exists or how large it is.
/// No roots (the default, for the client's own embedded silos) leaves paths unconfined.
/// </summary>
public sealed class PathRoots(IReadOnlyList<string> roots)
{
    public static PathRoots Unconfined { get; } = new([]);

    readonly string[] resolved = roots.Select(r => Resolve(Path.GetFullPath(r))).ToArray();

    /// <summary>Throws a <see cref="Training.JobSpecException"/> naming <paramref name="field"/> when <paramref name="path"/> is outside every root.</summary>
    public void Check(string? path, string field)
    {
        if (path is null || resolved.Length == 0) return;
        var full = Resolve(Path.GetFullPath(path));
        if (resolved.Any(root => full == root || full.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal))) return;
        throw new Training.JobSpecException(field,
            $"'{path}' is outside the directories this silo serves (Silo:PathRoots: {string.Join(", ", resolved)}); put the file there.");
    }

    /// <summary>The absolute path with each component's symbolic link followed, so that a link inside a root cannot lead out of it.</summary>
    static string Resolve(string full)
    {
        var current = Path.GetPathRoot(full) ?? "/";
        foreach (var part in full[current.Length..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo entry = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            // The final target is no link, but the directories above it may be: resolve them too.
            current = entry.LinkTarget is null ? next : Resolve(entry.ResolveLinkTarget(returnFinalTarget: true)!.FullName);
        }
        return current;
    }
}
