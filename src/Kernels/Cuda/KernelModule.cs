using System.Collections.Concurrent;
using System.Reflection;
using Orchestrator.Kernels.Cuda.Native;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// One of the assembly's embedded CUDA sources (swiglu.cu, adamw.cu, ...), compiled by NVRTC for one device's
/// architecture and loaded into its primary context; entry points are looked up once by name.
/// </summary>
sealed class KernelModule
{
    readonly IntPtr module;
    readonly ConcurrentDictionary<string, IntPtr> functions = new();

    KernelModule(IntPtr module) => this.module = module;

    /// <summary>Compiles and loads <paramref name="resource"/> for <paramref name="device"/>; the device must be current.</summary>
    public static KernelModule Load(CudaDevice device, string resource)
    {
        var text = Read(Prelude) + "\n#line 1 \"" + resource + "\"\n" + Read(resource);
        var cubin = Nvrtc.CompileToCubin(text, resource, device.ComputeMajor, device.ComputeMinor);
        return new KernelModule(CudaDriver.LoadModule(cubin));
    }

    /// <summary>The definitions every source starts with (element types, vector packs, the grid-stride loop).</summary>
    const string Prelude = "dtypes.cuh";

    static string Read(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{resource} is missing from the assembly resources.");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>The kernel <paramref name="entry"/> (an extern "C" name in the source).</summary>
    public IntPtr Function(string entry) => functions.GetOrAdd(entry, name => CudaDriver.Function(module, name));

    /// <summary>The suffix the sources give each element type's entry points.</summary>
    public static string Suffix(TorchSharp.torch.ScalarType dtype) => dtype switch
    {
        TorchSharp.torch.ScalarType.Float32 => "f32",
        TorchSharp.torch.ScalarType.BFloat16 => "bf16",
        TorchSharp.torch.ScalarType.Float16 => "f16",
        _ => throw new ArgumentException($"the fused kernels support Float32, BFloat16 and Float16, not {dtype}."),
    };
}
