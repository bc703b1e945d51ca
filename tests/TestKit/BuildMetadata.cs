using System.Reflection;

namespace Orchestrator.TestKit;

/// <summary>What a test assembly's build recorded about where things are (AssemblyMetadata items in its project file).</summary>
public static class BuildMetadata
{
    public static string Of(Assembly assembly, string key) =>
        assembly.GetCustomAttributes<AssemblyMetadataAttribute>().SingleOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"{assembly.GetName().Name} records no build metadata {key}: its project file must set it.");

    /// <summary>The repository the tests were built from (TestKit.csproj): where child processes start.</summary>
    public static string RepositoryRoot { get; } = Of(typeof(BuildMetadata).Assembly, "RepositoryRoot");
}
