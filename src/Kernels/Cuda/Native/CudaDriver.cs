using System.Runtime.InteropServices;
using Orchestrator.Kernels.Cuda.Ipc;

namespace Orchestrator.Kernels.Cuda.Native;

/// <summary>The few CUDA driver API entry points we need (libcuda.so.1), each checked.</summary>
static unsafe partial class CudaDriver
{
    public const int AttributeComputeCapabilityMajor = 75;
    public const int AttributeComputeCapabilityMinor = 76;

    [LibraryImport(NativeLibraries.Driver)] private static partial int cuInit(uint flags);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuDevicePrimaryCtxRetain(out IntPtr context, int device);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuCtxSetCurrent(IntPtr context);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuModuleLoadData(out IntPtr module, byte* image);
    [LibraryImport(NativeLibraries.Driver, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int cuModuleGetFunction(out IntPtr function, IntPtr module, string name);
    [LibraryImport(NativeLibraries.Driver)]
    private static partial int cuLaunchKernel(IntPtr function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, IntPtr stream, void** parameters, void** extra);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuCtxSynchronize();
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuEventCreate(out IntPtr evt, uint flags);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuEventRecord(IntPtr evt, IntPtr stream);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuEventSynchronize(IntPtr evt);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuEventElapsedTime(out float milliseconds, IntPtr start, IntPtr end);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuEventDestroy_v2(IntPtr evt);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuGetErrorName(int error, out IntPtr name);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemAlloc_v2(out ulong pointer, nuint bytes);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemFree_v2(ulong pointer);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuMemsetD32Async(ulong destination, uint value, nuint count, IntPtr stream);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuStreamSynchronize(IntPtr stream);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuStreamWaitEvent(IntPtr stream, IntPtr evt, uint flags);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuIpcGetMemHandle(out IpcHandle handle, ulong pointer);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuIpcOpenMemHandle_v2(out ulong pointer, IpcHandle handle, uint flags);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuIpcGetEventHandle(out IpcHandle handle, IntPtr evt);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuIpcOpenEventHandle(out IntPtr evt, IpcHandle handle);
    [LibraryImport(NativeLibraries.Driver)] private static partial int cuIpcCloseMemHandle(ulong pointer);

    public static void Init() => Check(cuInit(0), nameof(cuInit));

    public static int Device(int ordinal) { Check(cuDeviceGet(out var d, ordinal), nameof(cuDeviceGet)); return d; }

    public static int Attribute(int device, int attribute)
    {
        Check(cuDeviceGetAttribute(out var value, attribute, device), nameof(cuDeviceGetAttribute));
        return value;
    }

    public static IntPtr RetainPrimaryContext(int device)
    {
        Check(cuDevicePrimaryCtxRetain(out var context, device), nameof(cuDevicePrimaryCtxRetain));
        return context;
    }

    public static void SetCurrent(IntPtr context) => Check(cuCtxSetCurrent(context), nameof(cuCtxSetCurrent));

    public static IntPtr LoadModule(byte[] image)
    {
        fixed (byte* p = image)
        {
            Check(cuModuleLoadData(out var module, p), nameof(cuModuleLoadData));
            return module;
        }
    }

    public static IntPtr Function(IntPtr module, string name)
    {
        Check(cuModuleGetFunction(out var function, module, name), $"{nameof(cuModuleGetFunction)}({name})");
        return function;
    }

    /// <summary>Launches on the legacy default stream (null), the stream TorchSharp's work runs on.</summary>
    public static void Launch(IntPtr function, uint grid, uint block, void** parameters) =>
        Check(cuLaunchKernel(function, grid, 1, 1, block, 1, 1, 0, IntPtr.Zero, parameters, null), nameof(cuLaunchKernel));

    public static (long Free, long Total) MemoryInfo()
    {
        Check(cuMemGetInfo_v2(out var free, out var total), nameof(cuMemGetInfo_v2));
        return ((long)free, (long)total);
    }

    public static void Synchronize() => Check(cuCtxSynchronize(), nameof(cuCtxSynchronize));

    public static IntPtr CreateEvent() { Check(cuEventCreate(out var e, 0), nameof(cuEventCreate)); return e; }

    /// <summary>An event other processes can wait for (interprocess events must not time).</summary>
    public static IntPtr CreateInterprocessEvent()
    {
        const uint DisableTiming = 0x2, Interprocess = 0x4;
        Check(cuEventCreate(out var e, DisableTiming | Interprocess), nameof(cuEventCreate));
        return e;
    }

    /// <summary>Records on the legacy default stream: the event completes once the work queued before it has.</summary>
    public static void RecordEvent(IntPtr evt) => Check(cuEventRecord(evt, IntPtr.Zero), nameof(cuEventRecord));

    /// <summary>Makes the legacy default stream wait (on the device, not the host) until <paramref name="evt"/> completes.</summary>
    public static void WaitEvent(IntPtr evt) => Check(cuStreamWaitEvent(IntPtr.Zero, evt, 0), nameof(cuStreamWaitEvent));

    /// <summary>A stream that never waits for the legacy default stream, for small reads that must not wait for queued kernels.</summary>
    public static IntPtr CreateNonBlockingStream()
    {
        const uint NonBlocking = 0x1;
        Check(cuStreamCreate(out var stream, NonBlocking), nameof(cuStreamCreate));
        return stream;
    }
    public static void DestroyEvent(IntPtr evt) => Check(cuEventDestroy_v2(evt), nameof(cuEventDestroy_v2));

    /// <summary>Blocks the calling thread until the work queued before <paramref name="evt"/>'s last record has run.</summary>
    public static void SynchronizeEvent(IntPtr evt) => Check(cuEventSynchronize(evt), nameof(cuEventSynchronize));

    /// <summary>Milliseconds between two recorded events, waiting for the second.</summary>
    public static float ElapsedMilliseconds(IntPtr start, IntPtr end)
    {
        Check(cuEventSynchronize(end), nameof(cuEventSynchronize));
        Check(cuEventElapsedTime(out var ms, start, end), nameof(cuEventElapsedTime));
        return ms;
    }

    // Memory outside libtorch's caching allocator, for buffers other processes map (CUDA IPC): an IPC handle names a
    // whole allocation, and one of our own is never handed to another tensor while a peer still reads it.

    public static ulong Allocate(long bytes)
    {
        Check(cuMemAlloc_v2(out var pointer, (nuint)bytes), $"{nameof(cuMemAlloc_v2)}({bytes} bytes)");
        return pointer;
    }

    public static void Free(ulong pointer) => Check(cuMemFree_v2(pointer), nameof(cuMemFree_v2));

    /// <summary>Device-to-device copy on the legacy default stream (ordered with TorchSharp's work); peers work through unified addressing.</summary>
    public static void CopyAsync(ulong destination, ulong source, long bytes) =>
        Check(cuMemcpyDtoDAsync_v2(destination, source, (nuint)bytes, IntPtr.Zero), nameof(cuMemcpyDtoDAsync_v2));

    /// <summary>Reads one 64-bit word of device memory on <paramref name="stream"/> and waits for it (for that read only, on a non-blocking stream).</summary>
    public static ulong ReadWord(ulong source, IntPtr stream)
    {
        ulong value;
        Check(cuMemcpyDtoHAsync_v2(&value, source, sizeof(ulong), stream), nameof(cuMemcpyDtoHAsync_v2));
        Check(cuStreamSynchronize(stream), nameof(cuStreamSynchronize));
        return value;
    }

    /// <summary>Writes one 64-bit word on the legacy default stream, after the work queued before it; no host memory involved.</summary>
    public static void WriteWordAsync(ulong destination, ulong value)
    {
        Check(cuMemsetD32Async(destination, (uint)value, 1, IntPtr.Zero), nameof(cuMemsetD32Async));
        Check(cuMemsetD32Async(destination + 4, (uint)(value >> 32), 1, IntPtr.Zero), nameof(cuMemsetD32Async));
    }

    /// <summary>Waits for the legacy default stream of the current context.</summary>
    public static void SynchronizeStream() => Check(cuStreamSynchronize(IntPtr.Zero), nameof(cuStreamSynchronize));

    public static IpcHandle ExportMemory(ulong allocation)
    {
        Check(cuIpcGetMemHandle(out var handle, allocation), nameof(cuIpcGetMemHandle));
        return handle;
    }

    /// <summary>Maps another process's allocation into the current context (peer access enabled when it is on another GPU).</summary>
    public static ulong OpenMemory(IpcHandle handle)
    {
        const uint LazyEnablePeerAccess = 1;
        Check(cuIpcOpenMemHandle_v2(out var pointer, handle, LazyEnablePeerAccess), nameof(cuIpcOpenMemHandle_v2));
        return pointer;
    }

    public static void CloseMemory(ulong pointer) => Check(cuIpcCloseMemHandle(pointer), nameof(cuIpcCloseMemHandle));

    public static IpcHandle ExportEvent(IntPtr evt)
    {
        Check(cuIpcGetEventHandle(out var handle, evt), nameof(cuIpcGetEventHandle));
        return handle;
    }

    /// <summary>Another process's interprocess event; released with <see cref="DestroyEvent"/>.</summary>
    public static IntPtr OpenEvent(IpcHandle handle)
    {
        Check(cuIpcOpenEventHandle(out var evt, handle), nameof(cuIpcOpenEventHandle));
        return evt;
    }

    public static void Check(int result, string call)
    {
        if (result == 0) return;
        var name = cuGetErrorName(result, out var p) == 0 ? Marshal.PtrToStringUTF8(p) : null;
        throw new CudaException($"{call} failed: {name ?? "CUDA_ERROR"} ({result})");
    }
}
