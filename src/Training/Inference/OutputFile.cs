using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Training.Inference;

/// <summary>
/// A file a command writes at the end of its work: checked before the work starts, so an unwritable path costs no
/// prediction or export, and written atomically (<see cref="DurableFiles.ReplaceAtomically"/>), so a failure leaves
/// whatever was there before.
/// </summary>
public static class OutputFile
{
    /// <summary>
    /// Throws an <see cref="IOException"/> naming <paramref name="option"/> unless <paramref name="path"/> can be written:
    /// its directory exists and takes a new file, and the path is not a directory.
    /// </summary>
    public static string CheckWritable(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"{option}: '{path}' is a directory; give a file name.");
        string directory = Path.GetDirectoryName(full) ?? throw new IOException($"{option}: '{path}' has no directory.");
        if (!Directory.Exists(directory)) throw new IOException($"{option}: the directory '{directory}' does not exist.");
        string probe = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.probe");
        try
        {
            DurableFiles.Create(probe, _ => { });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option}: cannot write to '{directory}': {e.Message}", e);
        }
        finally
        {
            File.Delete(probe);
        }
        return full;
    }

    /// <summary>Replaces the file at <paramref name="path"/> (checked by <see cref="CheckWritable"/>) with what <paramref name="write"/> writes.</summary>
    public static void Write(string path, Action<Stream> write) => DurableFiles.ReplaceAtomically(path, write);
}
