namespace Orchestrator.Training;

/// <summary>
/// The name users type and read for a member of a closed set (a loss, a schedule, a transport): its enum name in lower
/// case, so `--transport message` and the summary's "message" are one word.
/// </summary>
public static class EnumNames
{
    public static string Of<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
}
