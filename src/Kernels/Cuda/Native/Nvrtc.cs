using System.Runtime.InteropServices;
using System.Text;

namespace Orchestrator.Kernels.Cuda.Native;

/// <summary>Run-time compilation of CUDA C to a cubin for one GPU architecture (libnvrtc).</summary>
static unsafe partial class Nvrtc
{
    [LibraryImport(NativeLibraries.Nvrtc, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int nvrtcCreateProgram(out IntPtr program, string source, string name, int headerCount, IntPtr headers, IntPtr includeNames);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcCompileProgram(IntPtr program, int optionCount, IntPtr* options);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcGetProgramLogSize(IntPtr program, out nuint size);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcGetProgramLog(IntPtr program, byte* log);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcGetCUBINSize(IntPtr program, out nuint size);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcGetCUBIN(IntPtr program, byte* cubin);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial int nvrtcDestroyProgram(ref IntPtr program);
    [LibraryImport(NativeLibraries.Nvrtc)] private static partial IntPtr nvrtcGetErrorString(int result);

    /// <summary>Compiles <paramref name="source"/> for sm_{major}{minor}; throws with the compiler log on failure.</summary>
    public static byte[] CompileToCubin(string source, string name, int major, int minor)
    {
        Check(nvrtcCreateProgram(out var program, source, name, 0, IntPtr.Zero, IntPtr.Zero), nameof(nvrtcCreateProgram));
        try
        {
            string[] options = [$"--gpu-architecture=sm_{major}{minor}", "--std=c++17", "-default-device"];
            var handles = options.Select(o => Marshal.StringToCoTaskMemUTF8(o)).ToArray();
            try
            {
                int result;
                fixed (IntPtr* p = handles) result = nvrtcCompileProgram(program, handles.Length, p);
                if (result != 0)
                    throw new CudaException($"NVRTC could not compile {name} for sm_{major}{minor}: {ErrorString(result)}\n{Log(program)}");
            }
            finally { foreach (var h in handles) Marshal.FreeCoTaskMem(h); }

            Check(nvrtcGetCUBINSize(program, out var size), nameof(nvrtcGetCUBINSize));
            var cubin = new byte[(int)size];
            fixed (byte* p = cubin) Check(nvrtcGetCUBIN(program, p), nameof(nvrtcGetCUBIN));
            return cubin;
        }
        finally { nvrtcDestroyProgram(ref program); }
    }

    static string Log(IntPtr program)
    {
        if (nvrtcGetProgramLogSize(program, out var size) != 0 || size == 0) return "";
        var log = new byte[(int)size];
        fixed (byte* p = log) nvrtcGetProgramLog(program, p);
        return Encoding.UTF8.GetString(log).TrimEnd('\0');
    }

    static string ErrorString(int result) => Marshal.PtrToStringUTF8(nvrtcGetErrorString(result)) ?? $"NVRTC error {result}";

    static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException($"{call} failed: {ErrorString(result)} ({result})");
    }
}
