using System.Text.RegularExpressions;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Orchestrator.Client.Commands;

/// <summary>
/// How the CLI reports an error that ends a command: Spectre's own rendering for parse errors, "Error: message"
/// otherwise, and for a value an option's converter refused, the option and the converter's reason in words (Spectre
/// alone says "Failed to convert '99999999999' to Nullable`1").
/// </summary>
public static partial class CommandLineErrors
{
    public static int Report(Exception e, string[] args)
    {
        if (e is CommandAppException { Pretty: { } pretty } && e.InnerException is null)
            AnsiConsole.Console.Write(pretty);
        else
            AnsiConsole.MarkupLine($"[red]Error:[/] {Markup.Escape(Describe(e, args))}");
        return -1;
    }

    /// <summary>The error in the user's words: a refused option value names the option and says why.</summary>
    public static string Describe(Exception e, string[] args)
    {
        if (e is not CommandRuntimeException { InnerException: { } reason } || ConversionFailed().Match(e.Message) is not { Success: true } match)
            return e.Message;
        string value = match.Groups[1].Value;
        int at = Array.FindIndex(args, a => a == value || a.EndsWith("=" + value, StringComparison.Ordinal));
        string? option = at < 0 ? null : args[at] == value ? (at > 0 && args[at - 1].StartsWith('-') ? args[at - 1] : null) : args[at][..args[at].IndexOf('=')];
        return reason is OptionValueException number
            ? $"{option ?? "an option"} must be {number.Takes}; got '{value}'."
            : $"{option ?? "an option"} {value}: {reason.Message}";
    }

    [GeneratedRegex("^Failed to convert '(.*)' to ")]
    private static partial Regex ConversionFailed();
}
