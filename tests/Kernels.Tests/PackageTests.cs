using System.IO.Compression;
using System.Reflection.Metadata;
using System.Xml.Linq;

namespace Orchestrator.Kernels.Tests;

/// <summary>
/// `dotnet pack src/Kernels` as a user of the repository runs it, into a scratch folder (its own obj and bin, so the
/// repository's build is untouched): the package must leave the choice of libtorch to the application.
/// </summary>
public class PackageTests
{
    [Fact]
    public async Task The_package_depends_on_TorchSharp_alone_and_carries_its_readme_docs_and_sources()
    {
        var scratch = Directory.CreateTempSubdirectory("kernels-pack-").FullName;
        try
        {
            var project = Path.Combine(BuildMetadata.RepositoryRoot, "src", "Kernels", "Kernels.csproj");
            var output = Path.Combine(scratch, "out");
            var run = await ChildProcess.RunAsync("dotnet",
                ["pack", project, "-o", output, "-nodeReuse:false",
                 $"-p:BaseIntermediateOutputPath={scratch}/obj/", $"-p:BaseOutputPath={scratch}/bin/"],
                TimeSpan.FromMinutes(8), new Dictionary<string, string> { ["MSBUILDDISABLENODEREUSE"] = "1" });
            Assert.True(run.ExitCode == 0, $"dotnet pack exited {run.ExitCode}:\n{run.Output}");

            var package = Assert.Single(Directory.GetFiles(output, "Orchestrator.Kernels.*.nupkg"), f => !f.EndsWith(".snupkg"));
            AssertSourcesEmbedded(Assert.Single(Directory.GetFiles(output, "Orchestrator.Kernels.*.snupkg")));
            using var zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("README.md", entries);
            Assert.Contains("lib/net10.0/Orchestrator.Kernels.dll", entries);
            Assert.Contains("lib/net10.0/Orchestrator.Kernels.xml", entries);
            Assert.DoesNotContain(entries, e => e.StartsWith("runtimes/"));   // no libtorch inside either

            using (var docs = new StreamReader(zip.GetEntry("lib/net10.0/Orchestrator.Kernels.xml")!.Open()))
            {
                var text = docs.ReadToEnd();
                Assert.Contains("T:Orchestrator.Kernels.Modules.GroupedSwiGluMlp", text);
                Assert.Contains("T:Orchestrator.Kernels.Modules.GroupedLinear", text);
            }

            var nuspec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
            XNamespace ns = nuspec.Root!.GetDefaultNamespace();
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal("Orchestrator.Kernels", metadata.Element(ns + "id")!.Value);
            Assert.Equal("MIT", metadata.Element(ns + "license")!.Value);
            Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
            var dependencies = metadata.Descendants(ns + "dependency").Select(d => d.Attribute("id")!.Value).ToList();
            Assert.Equal(["TorchSharp"], dependencies);
        }
        finally { Directory.Delete(scratch, recursive: true); }
    }

    /// <summary>Portable PDB custom debug information "embedded source" (its GUID in the Portable PDB spec).</summary>
    static readonly Guid EmbeddedSource = new("0E8A571B-6926-466E-B4AD-8AB04611F5FE");

    /// <summary>The symbol package's pdb holds the kernels' sources themselves, so debugging needs no repository URL.</summary>
    static void AssertSourcesEmbedded(string symbols)
    {
        using var zip = ZipFile.OpenRead(symbols);
        using var pdb = new MemoryStream();
        using (var entry = zip.Entries.Single(e => e.FullName == "lib/net10.0/Orchestrator.Kernels.pdb").Open()) entry.CopyTo(pdb);
        pdb.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
        var reader = provider.GetMetadataReader();
        var embedded = reader.Documents.Where(d => reader.GetCustomDebugInformation(d).Any(i =>
                reader.GetGuid(reader.GetCustomDebugInformation(i).Kind) == EmbeddedSource))
            .Select(d => Path.GetFileName(reader.GetString(reader.GetDocument(d).Name))).ToHashSet();
        var sources = Directory.GetFiles(Path.Combine(BuildMetadata.RepositoryRoot, "src", "Kernels"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/")).Select(f => Path.GetFileName(f));
        Assert.All(sources, source => Assert.Contains(source, embedded));
        Assert.Contains("GroupedLinear.cs", embedded);
    }
}
