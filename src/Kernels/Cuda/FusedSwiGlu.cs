using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Launches the fused SwiGLU kernels of swiglu.cu on a tensor's device, on the default stream (ordered
/// with TorchSharp's own work there). Tensors must be contiguous; the 16-byte vector variant is used
/// when H and every pointer allow it.
/// </summary>
static unsafe class FusedSwiGlu
{
    /// <summary>hidden (rows, H) = silu(g) * u from gateUp (rows, 2H).</summary>
    public static void Forward(Tensor gateUp, Tensor hidden)
    {
        var (device, rows, h, vector) = Prepare(gateUp, hidden);
        IntPtr gu = CudaDevice.DataPointer(gateUp), hd = CudaDevice.DataPointer(hidden);
        void** args = stackalloc void*[] { &gu, &hd, &rows, &h };
        device.Launch(Kernel(device, "forward", gateUp.dtype, vector), rows * (h / vector), args);
    }

    /// <summary>dGateUp (rows, 2H) from gateUp (rows, 2H) and dHidden (rows, H).</summary>
    public static void Backward(Tensor gateUp, Tensor dHidden, Tensor dGateUp)
    {
        var (device, rows, h, vector) = Prepare(gateUp, dHidden, dGateUp);
        IntPtr gu = CudaDevice.DataPointer(gateUp), dh = CudaDevice.DataPointer(dHidden), dgu = CudaDevice.DataPointer(dGateUp);
        void** args = stackalloc void*[] { &gu, &dh, &dgu, &rows, &h };
        device.Launch(Kernel(device, "backward", gateUp.dtype, vector), rows * (h / vector), args);
    }

    static IntPtr Kernel(CudaDevice device, string direction, ScalarType dtype, int vector) =>
        device.Module("swiglu.cu").Function($"swiglu_{direction}_{KernelModule.Suffix(dtype)}_v{vector}");

    static (CudaDevice Device, long Rows, long H, int Vector) Prepare(Tensor gateUp, params Tensor[] others)
    {
        foreach (var t in others.Prepend(gateUp))
            if (!t.is_contiguous()) throw new ArgumentException("the fused SwiGLU kernels need contiguous tensors.");
        long h = gateUp.shape[^1] / 2, rows = gateUp.numel() / Math.Max(2 * h, 1);
        int width = 16 / (int)gateUp.ElementSize;
        bool aligned = h % width == 0 && others.Prepend(gateUp).All(t => CudaDevice.DataPointer(t) % 16 == 0);
        var device = CudaDevice.Of(gateUp);
        return (device, rows, h, aligned ? width : 1);
    }
}
