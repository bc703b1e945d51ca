using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Orchestrator.Kernels.Cuda.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Per-GPU state shared by every kernel on that device: the primary context (the one libtorch uses),
/// a cuBLAS handle and the NVRTC-compiled fused kernels. Created once per device, on first use.
/// </summary>
public sealed partial class CudaDevice
{
    static readonly ConcurrentDictionary<int, Lazy<CudaDevice>> Devices = new();

    /// <summary>The CUDA device ordinal (cuda:N).</summary>
    public int Ordinal { get; }
    /// <summary>Compute capability, major part (9 on an H100): picks the NVRTC target.</summary>
    public int ComputeMajor { get; }
    /// <summary>Compute capability, minor part.</summary>
    public int ComputeMinor { get; }
    readonly IntPtr context;
    readonly Lazy<IntPtr> cublas;
    readonly ConcurrentDictionary<string, Lazy<KernelModule>> modules = new();
    readonly Lazy<IntPtr> sideStream;

    CudaDevice(int ordinal)
    {
        Ordinal = ordinal;
        CudaDriver.Init();
        int device = CudaDriver.Device(ordinal);
        ComputeMajor = CudaDriver.Attribute(device, CudaDriver.AttributeComputeCapabilityMajor);
        ComputeMinor = CudaDriver.Attribute(device, CudaDriver.AttributeComputeCapabilityMinor);
        context = CudaDriver.RetainPrimaryContext(device);
        cublas = new(() => { MakeCurrent(); return Cublas.Create(); });
        sideStream = new(() => { MakeCurrent(); return CudaDriver.CreateNonBlockingStream(); });
    }

    /// <summary>The device a CUDA tensor lives on.</summary>
    public static CudaDevice Of(Tensor t) => For(t.device.index < 0 ? 0 : t.device.index);

    /// <summary>The device cuda:<paramref name="ordinal"/>, created on first use.</summary>
    public static CudaDevice For(int ordinal) => Devices.GetOrAdd(ordinal, o => new Lazy<CudaDevice>(() => new CudaDevice(o))).Value;

    /// <summary>
    /// Makes this device current for the driver and the runtime on the calling thread. .NET moves work
    /// between threads, so every launch calls this first; it is a cheap thread-local switch.
    /// </summary>
    public void MakeCurrent()
    {
        CudaDriver.SetCurrent(context);
        CudaRuntime.SetDevice(Ordinal);
    }

    internal IntPtr CublasHandle => cublas.Value;
    /// <summary>The embedded CUDA source <paramref name="resource"/>, compiled for this device on first use.</summary>
    internal KernelModule Module(string resource) =>
        modules.GetOrAdd(resource, r => new Lazy<KernelModule>(() => { MakeCurrent(); return KernelModule.Load(this, r); })).Value;

    /// <summary>Threads per block of the one-dimensional elementwise kernels.</summary>
    internal const uint BlockSize = 256;

    /// <summary>
    /// Launches a one-dimensional kernel with <paramref name="threads"/> threads in blocks of <see cref="BlockSize"/> on the
    /// default stream. One work item per thread: a grid capped at 64 blocks per SM that strided over the rest ran the SwiGLU
    /// backward at 55% of copy bandwidth instead of 96-99% (docs/kernel-notes.md); the kernels still stride, for grids
    /// past the launch limit.
    /// </summary>
    internal unsafe void Launch(IntPtr function, long threads, void** args)
    {
        if (threads == 0) return;
        long grid = Math.Min((threads + BlockSize - 1) / BlockSize, int.MaxValue);
        MakeCurrent();
        CudaDriver.Launch(function, (uint)grid, BlockSize, args);
    }
    /// <summary>A non-blocking stream for small reads that must not wait behind the kernels queued on the default stream.</summary>
    internal IntPtr SideStream => sideStream.Value;

    /// <summary>Free and total bytes of this device's memory.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        return CudaDriver.MemoryInfo();
    }

    /// <summary>The raw device address of a tensor's first element (storage offset included).</summary>
    internal static IntPtr DataPointer(Tensor t) => THSTensor_data(t.Handle);

    [LibraryImport(NativeLibraries.TorchSharpShim)] private static partial IntPtr THSTensor_data(IntPtr tensor);
}
