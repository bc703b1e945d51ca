using System.Globalization;

namespace Orchestrator.Client.Commands;

/// <summary>Option values parsed into typed ones at the command line, with errors that name the option and the choices.</summary>
public static class OptionValues
{
    /// <summary>Comma-separated numbers ("1, 0.5,2").</summary>
    public static double[] Numbers(string option, string value) =>
        value.Split(',', StringSplitOptions.TrimEntries).Select(item =>
            double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) ? number
                : throw new ArgumentException($"{option}: '{item}' is not a number (expected a comma-separated list like 1,0.5,2).")).ToArray();
}
