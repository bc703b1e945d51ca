using Orchestrator.Build;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Tests;

/// <summary>
/// TorchSharp's native shim as shipped does not load on Debian 12 (it demands GLIBCXX_3.4.32); the build
/// patches the copy in the output. These tests load it for real and check the patcher itself.
/// </summary>
public class TorchSharpLoadingTests
{
    const string Version = "GLIBCXX_3.4.32";

    static string OutputShim => Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).First();

    static string PackageShim()
    {
        var root = BuildInfo.Metadata("NuGetPackageRoot");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void Libtorch_loads_and_computes()
    {
        using var a = arange(6, ScalarType.Float64).view(2, 3);
        using var b = a.matmul(a.t());
        Assert.Equal(new double[] { 5, 14, 14, 50 }, b.data<double>().ToArray());
    }

    [Fact]
    public void The_shim_in_the_output_is_already_patched()
    {
        var bytes = File.ReadAllBytes(OutputShim);
        Assert.Empty(ElfVersionPatcher.WeakenInMemory(bytes, [Version]));
    }

    [Fact]
    public void Patching_the_shipped_shim_flips_only_flag_bits_and_is_idempotent()
    {
        var original = File.ReadAllBytes(PackageShim());
        var patched = (byte[])original.Clone();
        Assert.Equal([Version], ElfVersionPatcher.WeakenInMemory(patched, [Version]));
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(differing);
        Assert.Equal(0x2, original[differing[0]] ^ patched[differing[0]]);
        Assert.Empty(ElfVersionPatcher.WeakenInMemory(patched, [Version]));
        Assert.Equal(patched, File.ReadAllBytes(OutputShim));
    }

    [Fact]
    public void Patching_a_file_on_disk_is_idempotent()
    {
        var path = Path.Combine(Path.GetTempPath(), $"shim-{Guid.NewGuid():N}.so");
        File.Copy(PackageShim(), path);
        try
        {
            Assert.Equal([Version], ElfVersionPatcher.Weaken(path, [Version]));
            var stamp = File.GetLastWriteTimeUtc(path);
            Assert.Empty(ElfVersionPatcher.Weaken(path, [Version]));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_file_that_is_not_elf_is_rejected_clearly()
    {
        var bytes = new byte[256];
        new Random(1).NextBytes(bytes);
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.WeakenInMemory(bytes, [Version]));
        Assert.Contains("not an ELF file", e.Message);
    }

    [Fact]
    public void A_truncated_elf_is_rejected_clearly()
    {
        var bytes = File.ReadAllBytes(PackageShim())[..4096];
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.WeakenInMemory(bytes, [Version]));
        Assert.Contains("outside the file", e.Message);
    }
}
