using System.Runtime.InteropServices;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Writes that survive a crash or power loss whole or not at all: data is fsynced before a rename publishes it, and
/// the directory is fsynced after, so the rename itself is on disk.
/// </summary>
public static class DurableFiles
{
    /// <summary>Creates <paramref name="path"/>, lets <paramref name="write"/> fill it, then flushes it to disk.</summary>
    public static void Create(string path, Action<Stream> write)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        write(file);
        file.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> atomically with what <paramref name="write"/> writes: readers see the old
    /// content or the whole new one, never a part, and writing the same file again (a retry) is harmless.
    /// </summary>
    public static void ReplaceAtomically(string path, Action<Stream> write)
    {
        string directory = Path.GetDirectoryName(path)!;
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Create(temporary, write);
            File.Move(temporary, path, overwrite: true);   // rename(2): atomic on one file system
        }
        finally
        {
            File.Delete(temporary);   // no-op once moved
        }
        SyncDirectory(directory);
    }

    /// <summary>fsync on the directory, which makes the creations, renames and deletions inside it durable.</summary>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;   // NTFS journals renames; a directory cannot be opened for flushing
        int fd = open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory '{directory}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = close(fd);
        }
    }

    [DllImport("libc", SetLastError = true)] static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", SetLastError = true)] static extern int fsync(int fd);
    [DllImport("libc", SetLastError = true)] static extern int close(int fd);
}
