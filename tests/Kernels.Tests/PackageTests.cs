using System.IO.Compression;
using System.Xml.Linq;

namespace Orchestrator.Kernels.Tests;

/// <summary>
/// `dotnet pack src/Kernels` as a user of the repository runs it, into a scratch folder (its own obj and bin, so the
/// repository's build is untouched): the package must leave the choice of libtorch to the application.
/// </summary>
public class PackageTests
{
    [Fact]
    public async Task The_package_depends_on_TorchSharp_alone_and_carries_its_readme_and_docs()
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
            Assert.Single(Directory.GetFiles(output, "Orchestrator.Kernels.*.snupkg"));
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
}
