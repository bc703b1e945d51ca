using System.Runtime.InteropServices;

namespace Orchestrator.Training.Data;

/// <summary>
/// Refuses paths that are not regular files before they are opened: opening a FIFO blocks until a writer appears (a
/// job would hang), and devices or /proc files have no fixed size to check. .NET reports all of them as "Normal"
/// files, so the file type comes from Linux's statx, whose buffer layout is the same on every architecture.
/// </summary>
public static partial class RegularFile
{
    const int AtCurrentDirectory = -100, StatxType = 0x1, ModeOffset = 28, TypeMask = 0xF000, Regular = 0x8000;

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="what"/> when <paramref name="path"/> exists and is not a regular file.</summary>
    public static void Require(string path, string what)
    {
        if (!OperatingSystem.IsLinux()) return;
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtCurrentDirectory, path, 0, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0) return;   // missing: opening says so
        int type = BitConverter.ToUInt16(buffer[ModeOffset..]) & TypeMask;
        if (type != Regular)
            throw new InvalidDataException($"{what} '{path}' is not a regular file but a {TypeName(type)}; give a file on disk.");
    }

    static string TypeName(int type) => type switch
    {
        0x1000 => "FIFO (named pipe)",
        0x2000 => "character device",
        0x4000 => "directory",
        0x6000 => "block device",
        0xC000 => "socket",
        _ => $"special file (type 0x{type:X})",
    };

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int directory, string path, int flags, uint mask, ref byte buffer);
}
