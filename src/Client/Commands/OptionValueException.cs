namespace Orchestrator.Client.Commands;

/// <summary>
/// A converter refused an option's value; <see cref="Takes"/> says what the option takes, and
/// <see cref="CommandLineErrors"/> names the option and the value around it: "--steps must be ...; got '1.5'".
/// </summary>
public sealed class OptionValueException(string takes) : FormatException($"must be {takes}")
{
    public string Takes { get; } = takes;
}
