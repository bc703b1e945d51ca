namespace Orchestrator.Training;

/// <summary>
/// The name users type and read for a member of a closed set (a loss, a schedule, a transport): its enum name in lower
/// case, so `--transport message` and the summary's "message" are one word.
/// </summary>
public static class EnumNames
{
    public static string Of<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    /// <summary>
    /// The member whose name is <paramref name="name"/>, case-insensitively; false for anything else (numbers and
    /// lists such as "message,channel" too, which Enum.TryParse would read as some member).
    /// </summary>
    public static bool TryParse<T>(string? name, out T value) where T : struct, Enum
    {
        foreach (var member in Enum.GetValues<T>())
        {
            if (!string.Equals(Of(member), name?.Trim(), StringComparison.OrdinalIgnoreCase)) continue;
            value = member;
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>Every member's name, comma-separated, as errors list the choices.</summary>
    public static string List<T>() where T : struct, Enum => string.Join(", ", Enum.GetValues<T>().Select(Of));
}
