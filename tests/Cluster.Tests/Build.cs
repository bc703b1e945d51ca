[assembly: CollectionBehavior(DisableTestParallelization = true)]   // silo processes are heavy on a 2-core machine

namespace Orchestrator.Cluster.Tests;

/// <summary>Where the built silo and client are: the repository and configuration this test assembly was built from.</summary>
public static class Build
{
    public static string Configuration => BuildMetadata.Of(typeof(Build).Assembly, "Configuration");
    public static string SiloDll => Output("Silo", "Orchestrator.Silo.dll");
    public static string ClientDll => Output("Client", "orchestrator.dll");

    static string Output(string project, string dll)
    {
        var path = Path.Combine(BuildMetadata.RepositoryRoot, "src", project, "bin", Configuration, "net10.0", dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: build src/{project} ({Configuration}) first.", path);
    }
}
