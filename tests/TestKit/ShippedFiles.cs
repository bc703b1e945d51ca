namespace Orchestrator.TestKit;

/// <summary>What a program's build output must hold, and must not: linux-x64 natives only, no build tooling.</summary>
public static class ShippedFiles
{
    /// <summary>
    /// The build output around <paramref name="program"/> (its .dll) has libtorch's linux-x64 natives beside the program (so the
    /// checks below look at a real output), no other platform's natives under runtimes/, and no Roslyn assemblies.
    /// </summary>
    public static void AssertLinuxOnly(string program)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(program)) ?? throw new ArgumentException($"{program} has no directory", nameof(program));
        Assert.True(File.Exists(Path.Combine(directory, "libLibTorchSharp.so")), $"{directory} has no libLibTorchSharp.so: not a TorchSharp program's output");
        var runtimes = Path.Combine(directory, "runtimes");
        var foreign = Directory.Exists(runtimes)
            ? Directory.GetDirectories(runtimes).Select(d => Path.GetFileName(d))
                .Where(rid => rid.StartsWith("osx", StringComparison.Ordinal) || rid.StartsWith("win", StringComparison.Ordinal)).ToList()
            : [];
        Assert.True(foreign.Count == 0, $"{runtimes} has natives for {string.Join(", ", foreign)}");
        Assert.Empty(Directory.GetFiles(directory, "Microsoft.CodeAnalysis*.dll", SearchOption.AllDirectories));
    }
}
