using System.Globalization;
using System.Numerics;

namespace Orchestrator.Grains.Hosting;

/// <summary>What a number or switch setting takes, in the words the client's and the silo's errors both use ("--steps must be ...").</summary>
public static class ValueWords
{
    /// <summary>"a whole number from -2147483648 to 2147483647" for int.</summary>
    public static string WholeNumber<T>() where T : IMinMaxValue<T>, IFormattable =>
        string.Create(CultureInfo.InvariantCulture, $"a whole number from {T.MinValue} to {T.MaxValue}");

    public const string Number = "a number such as 0.01 or 1e-3";

    public const string Boolean = "true or false";
}
