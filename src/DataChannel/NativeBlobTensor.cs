using System.Runtime.InteropServices;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// CPU tensors over native memory this process manages itself, with a callback when libtorch lets go of it.
/// </summary>
/// <remarks>
/// TorchSharp has no public <c>from_blob</c> with a deleter, but its native shim (LibTorchSharp, which TorchSharp
/// loads from the same place this import resolves to) exports the function its own array constructors use:
/// <c>THSTensor_new(data, deleter, sizes, rank, element type, dtype, device type, device index, requires_grad)</c>,
/// which wraps <c>torch::from_blob(data, sizes, deleter, options)</c> and so copies nothing when the element type
/// equals the dtype and the device is the CPU. Its signature is pinned by the TorchSharp version in
/// Directory.Packages.props; the data channel tests exercise it (a changed signature fails every receive).
/// </remarks>
internal static unsafe class NativeBlobTensor
{
    [DllImport("LibTorchSharp", EntryPoint = "THSTensor_new")]
    static extern IntPtr New(IntPtr data, delegate* unmanaged[Cdecl]<IntPtr, void> deleter, long* sizes, int rank,
        sbyte elementType, sbyte dtype, int deviceType, int deviceIndex, [MarshalAs(UnmanagedType.U1)] bool requiresGrad);

    /// <summary>
    /// A CPU tensor of <paramref name="shape"/> and <paramref name="dtype"/> whose storage is <paramref name="data"/>
    /// (at least as many bytes as the shape needs). libtorch calls <paramref name="deleter"/> with <paramref name="data"/>
    /// once the last tensor or view over that storage is gone, from whichever thread disposed it (or a finalizer).
    /// </summary>
    public static torch.Tensor Over(IntPtr data, long[] shape, torch.ScalarType dtype, delegate* unmanaged[Cdecl]<IntPtr, void> deleter)
    {
        IntPtr handle;
        fixed (long* sizes = shape)
            handle = New(data, deleter, sizes, shape.Length, (sbyte)dtype, (sbyte)dtype, (int)DeviceType.CPU, 0, requiresGrad: false);
        if (handle == IntPtr.Zero) torch.CheckForErrors();
        return torch.Tensor.UnsafeCreateTensor(handle);
    }
}
