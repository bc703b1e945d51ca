using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Launches the one-pass elementwise kernels of the training step (mse.cu, silu.cu, finite.cu) on the default stream. Tensors are
/// contiguous, of one shape, dtype (float32, bfloat16, float16) and CUDA device; the 16-byte vector variants run when
/// the element count and every pointer allow them.
/// </summary>
public static unsafe class FusedElementwise
{
    /// <summary>Whether these tensors can go through the fused kernels (otherwise the caller uses TorchSharp ops).</summary>
    public static bool Supports(params Tensor[] tensors) =>
        tensors[0].device_type == DeviceType.CUDA && tensors[0].dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
        && tensors.All(t => t.is_contiguous() && t.dtype == tensors[0].dtype && t.device_index == tensors[0].device_index
                            && t.shape.SequenceEqual(tensors[0].shape));

    /// <summary>
    /// dY = (2 / n) (y - target), and mean((y - target)²) added to <paramref name="loss"/> (a float64 scalar on the device,
    /// zero before the call), in one pass over n elements.
    /// </summary>
    public static void MseLoss(Tensor y, Tensor target, Tensor dY, Tensor loss)
    {
        Require(y, target, dY);
        RequireScalar(loss, y, nameof(loss));
        long n = y.numel();
        float scale = (float)(2.0 / n);
        double inverse = 1.0 / n;
        IntPtr py = CudaDevice.DataPointer(y), pt = CudaDevice.DataPointer(target), pd = CudaDevice.DataPointer(dY), pl = CudaDevice.DataPointer(loss);
        void** args = stackalloc void*[] { &py, &pt, &pd, &pl, &n, &scale, &inverse };
        Launch("mse.cu", "mse", n, args, y, target, dY);
    }

    /// <summary>The number of NaN and infinite elements of <paramref name="x"/>, added to <paramref name="count"/> (one float64 element on its device).</summary>
    public static void CountNonFinite(Tensor x, Tensor count)
    {
        Require(x);
        RequireScalar(count, x, nameof(count));
        long n = x.numel();
        IntPtr px = CudaDevice.DataPointer(x), pc = CudaDevice.DataPointer(count);
        void** args = stackalloc void*[] { &px, &n, &pc };
        Launch("finite.cu", "count_nonfinite", n, args, x);
    }

    /// <summary>dPre = dX * silu'(pre), silu'(z) = s (1 + z (1 - s)), s = sigmoid(z), in one pass.</summary>
    public static void SiluBackward(Tensor dX, Tensor pre, Tensor dPre)
    {
        Require(dX, pre, dPre);
        long n = dX.numel();
        IntPtr pdx = CudaDevice.DataPointer(dX), pz = CudaDevice.DataPointer(pre), pd = CudaDevice.DataPointer(dPre);
        void** args = stackalloc void*[] { &pdx, &pz, &pd, &n };
        Launch("silu.cu", "silu_backward", n, args, dX, pre, dPre);
    }

    static void Require(params Tensor[] tensors)
    {
        if (!Supports(tensors))
            throw new ArgumentException($"the fused kernels need contiguous CUDA tensors of one shape and dtype (float32, bfloat16 or float16); got " +
                                        string.Join(", ", tensors.Select(t => $"{t.dtype} {GroupedShapes.Show(t)} on {t.device}")) + ".");
    }

    static void RequireScalar(Tensor scalar, Tensor on, string name)
    {
        if (scalar.dtype != ScalarType.Float64 || scalar.numel() != 1 || scalar.device_type != DeviceType.CUDA || scalar.device_index != on.device_index)
            throw new ArgumentException($"{name} must be one float64 element on {on.device}.", name);
    }

    static void Launch(string source, string kernel, long n, void** args, params Tensor[] tensors)
    {
        int width = 16 / (int)tensors[0].ElementSize;
        int vector = n % width == 0 && tensors.All(t => CudaDevice.DataPointer(t) % 16 == 0) ? width : 1;
        var device = CudaDevice.Of(tensors[0]);
        device.Launch(device.Module(source).Function($"{kernel}_{KernelModule.Suffix(tensors[0].dtype)}_v{vector}"), n / vector, args);
    }
}
