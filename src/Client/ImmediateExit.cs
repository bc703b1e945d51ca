using System.Runtime.InteropServices;

namespace Orchestrator.Client;

/// <summary>
/// Ends the process at once, as a second stop signal asks: stdout and stderr are flushed, then libc's _exit skips the
/// runtime's and the native libraries' teardown. That teardown would run while a device thread of the embedded silo is
/// still inside libtorch with the step in progress, and crash (SIGSEGV, exit 139) instead of exiting with the signal's
/// code. Nothing durable is lost: a checkpoint is published only once all of it is on disk.
/// </summary>
public static class ImmediateExit
{
    [DllImport("libc", EntryPoint = "_exit")]
    static extern void Exit(int status);

    public static void Now(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        Exit(code);
    }
}
