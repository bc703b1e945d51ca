using Spectre.Console;

namespace Orchestrator.Client.Commands;

/// <summary>
/// The problems `predict` and `export` expect (a missing or damaged checkpoint, a data file that does not fit, an
/// output that cannot be written) as one red line and exit code 1, not a stack trace.
/// </summary>
public static class InferenceErrors
{
    public static int Report(Action run)
    {
        try
        {
            run();
            return 0;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException or InvalidOperationException)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return 1;
        }
    }
}
