using Orchestrator.Training;

namespace Orchestrator.Client.Commands;

/// <summary>
/// Reads an option that names a member of a closed set (--transport message, --loss bce) as <see cref="EnumNames"/>
/// names it, case-insensitively; numbers and lists are refused.
/// </summary>
public sealed class EnumNameConverter<T> : OptionNameConverter<T> where T : struct, Enum
{
    protected override T Parse(string text) =>
        EnumNames.TryParse(text, out T member) ? member : throw new FormatException($"'{text}' is not one of {EnumNames.List<T>()}.");
}
