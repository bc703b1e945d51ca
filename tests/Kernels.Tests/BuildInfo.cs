namespace Orchestrator.Kernels.Tests;

/// <summary>What the build of this test assembly recorded about where things are (Kernels.Tests.csproj).</summary>
public static class BuildInfo
{
    public static string Metadata(string key) => BuildMetadata.Of(typeof(BuildInfo).Assembly, key);

    /// <summary>
    /// A project's built program, found where this assembly sits relative to its own project (bin/[backend/]Configuration/tfm):
    /// every project in the repository lays out its output by the same rule (Directory.Build.props).
    /// </summary>
    public static string ProgramOf(string projectDirectory, string dll)
    {
        var layout = Path.GetRelativePath(Metadata("ProjectDirectory"), AppContext.BaseDirectory);
        var path = Path.GetFullPath(Path.Combine(BuildMetadata.RepositoryRoot, projectDirectory, layout, dll));
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: build {projectDirectory} first.", path);
    }
}
