using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Orchestrator.Kernels.Cuda.Native;

/// <summary>
/// Resolves the logical library names of our P/Invoke declarations to whichever CUDA major version the
/// host has: PyTorch's CUDA 13 wheels ship libcublas.so.13 and libnvrtc.so.13, the libtorch-cuda-12.x
/// packages the .so.12 names. The first that loads wins; none is loaded until a CUDA path runs, so CPU
/// hosts never touch them.
/// </summary>
static class NativeLibraries
{
    public const string Driver = "orchestrator-cuda";
    public const string Runtime = "orchestrator-cudart";
    public const string Nvrtc = "orchestrator-nvrtc";
    public const string Cublas = "orchestrator-cublas";
    public const string TorchSharpShim = "orchestrator-libtorchsharp";

    static readonly Dictionary<string, string[]> Candidates = new()
    {
        [Driver] = ["libcuda.so.1", "libcuda.so"],
        [Runtime] = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"],
        [Nvrtc] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
        [Cublas] = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"],
    };

    // A resolver must be in place before the first P/Invoke of this assembly; a module initializer is
    // the one hook that is guaranteed to run first.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name == TorchSharpShim)
        {
            // The shim TorchSharp itself already loaded, found the way TorchSharp finds it.
            var torchSharp = typeof(TorchSharp.torch).Assembly;
            foreach (var candidate in new[] { "LibTorchSharp", "libLibTorchSharp.so" })
                if (NativeLibrary.TryLoad(candidate, torchSharp, null, out var shim)) return shim;
            return IntPtr.Zero;
        }
        if (!Candidates.TryGetValue(name, out var files)) return IntPtr.Zero;
        foreach (var file in files)
            if (NativeLibrary.TryLoad(file, out var handle)) return handle;
        throw new DllNotFoundException(
            $"None of {string.Join(", ", files)} could be loaded. On a GPU host, put the CUDA libraries of your PyTorch or libtorch " +
            "install on LD_LIBRARY_PATH (the 'system' launcher does this).");
    }
}
