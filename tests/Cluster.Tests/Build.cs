using System.Reflection;

[assembly: CollectionBehavior(DisableTestParallelization = true)]   // silo processes are heavy on a 2-core machine

namespace Orchestrator.Cluster.Tests;

/// <summary>Where the built silo and client are: the repository and configuration this test assembly was built from.</summary>
public static class Build
{
    static string Metadata(string key) =>
        typeof(Build).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static string RepositoryRoot => Metadata("RepositoryRoot");
    public static string Configuration => Metadata("Configuration");
    public static string SiloDll => Output("Silo", "Orchestrator.Silo.dll");
    public static string ClientDll => Output("Client", "orchestrator.dll");

    static string Output(string project, string dll)
    {
        var path = Path.Combine(RepositoryRoot, "src", project, "bin", Configuration, "net10.0", dll);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: build src/{project} ({Configuration}) first.", path);
    }
}
