using System.Text.RegularExpressions;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Silo;

/// <summary>
/// A configuration value the silo's settings cannot take, in the user's words: the binder alone says "Failed to
/// convert configuration value 'abc' at 'Silo:SiloPort' to type 'System.Int32'", over "abc is not a valid value for
/// Int32. (Parameter 'value')", and the silo used to die of it with a stack trace.
/// </summary>
static partial class SiloConfigurationErrors
{
    /// <summary>"--silo-port (Silo:SiloPort) must be a whole number from -2147483648 to 2147483647; got 'abc'.", or null for any other exception.</summary>
    public static string? Describe(Exception e)
    {
        for (Exception? at = e; at is not null; at = at.InnerException)
        {
            if (at is not InvalidOperationException || ConversionFailed().Match(at.Message) is not { Success: true } match) continue;
            var (value, key, type) = (match.Groups[1].Value, match.Groups[2].Value, match.Groups[3].Value);
            string option = SiloCommandLine.Switches.FirstOrDefault(s => s.Value.Equals(key, StringComparison.OrdinalIgnoreCase)).Key is { } name
                ? $"{name} ({key})"
                : key;
            return $"{option} must be {Takes(type)}; got '{value}'.";
        }
        return null;
    }

    static string Takes(string type) => type switch
    {
        "System.Int32" => ValueWords.WholeNumber<int>(),
        "System.Int64" => ValueWords.WholeNumber<long>(),
        "System.Double" => ValueWords.Number,
        "System.Boolean" => ValueWords.Boolean,
        _ => $"a value of type {type}",
    };

    [GeneratedRegex("^Failed to convert configuration value '(.*)' at '(.*)' to type '(.*)'")]
    private static partial Regex ConversionFailed();
}
