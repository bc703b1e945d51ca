using System.Runtime.InteropServices;

namespace Orchestrator.Kernels.Cuda.Native;

/// <summary>cudaSetDevice from the CUDA runtime libtorch already loaded: cuBLAS binds to the runtime's current device.</summary>
static partial class CudaRuntime
{
    [LibraryImport(NativeLibraries.Runtime)] private static partial int cudaSetDevice(int device);
    [LibraryImport(NativeLibraries.Runtime)] private static partial IntPtr cudaGetErrorName(int error);

    public static void SetDevice(int ordinal)
    {
        int result = cudaSetDevice(ordinal);
        if (result != 0)
            throw new CudaException($"cudaSetDevice({ordinal}) failed: {Marshal.PtrToStringUTF8(cudaGetErrorName(result))} ({result})");
    }
}
