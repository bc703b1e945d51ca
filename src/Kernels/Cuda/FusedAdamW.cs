using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>One tensor's part of a fused AdamW step: float32 master, moments and gradient, and the working copy (or null).</summary>
public sealed record AdamWTensor(Tensor Master, Tensor ExpAvg, Tensor ExpAvgSq, Tensor Gradient, Tensor? Working);

/// <summary>The scalars of one AdamW step (<see cref="FusedAdamW"/>'s formula), computed on the host in float64.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct AdamWScalars(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Eps,
    float StepSize, float BiasCorrection2Sqrt);

/// <summary>
/// Launches adamw.cu: every tensor of one optimizer in ONE kernel on the default stream, reading master, gradient and
/// both moments once and writing master, moments and the half-precision working copy once (28 bytes a parameter for
/// bfloat16 jobs). Masters and moments are float32; gradients and working copies are float32, bfloat16 or float16.
/// </summary>
public static unsafe class FusedAdamW
{
    const int MaxTensors = 8, Chunk = 4;

    /// <summary>Whether one launch can take these tensors: CUDA, float32 state, contiguous, aligned for its vector accesses.</summary>
    public static bool Supports(IReadOnlyList<AdamWTensor> tensors) =>
        tensors.Count is > 0 and <= MaxTensors && tensors.All(t =>
            t.Master.device_type == DeviceType.CUDA && t.Master.dtype == ScalarType.Float32
            && t.ExpAvg.dtype == ScalarType.Float32 && t.ExpAvgSq.dtype == ScalarType.Float32
            && t.Gradient.dtype == tensors[0].Gradient.dtype && (t.Working is null || t.Working.dtype == t.Gradient.dtype)
            && (t.Working is null) == (tensors[0].Working is null)
            && new[] { t.Master, t.ExpAvg, t.ExpAvgSq, t.Gradient, t.Working }.All(x => x is null || Fits(x, t.Master)));

    /// <summary>One AdamW step over all <paramref name="tensors"/>; check <see cref="Supports"/> first.</summary>
    public static void Step(IReadOnlyList<AdamWTensor> tensors, AdamWScalars scalars)
    {
        if (!Supports(tensors))
            throw new ArgumentException("the fused AdamW takes 1-8 contiguous, aligned CUDA tensors with float32 masters and moments, on one device.");
        var table = new AdamWTensors { Count = tensors.Count };
        long chunks = 0;
        for (int k = 0; k < tensors.Count; k++)
        {
            var t = tensors[k];
            table.Master[k] = (long)CudaDevice.DataPointer(t.Master);
            table.ExpAvg[k] = (long)CudaDevice.DataPointer(t.ExpAvg);
            table.ExpAvgSq[k] = (long)CudaDevice.DataPointer(t.ExpAvgSq);
            table.Gradient[k] = (long)CudaDevice.DataPointer(t.Gradient);
            table.Working[k] = t.Working is null ? 0 : (long)CudaDevice.DataPointer(t.Working);
            table.Numel[k] = t.Master.numel();
            table.FirstChunk[k] = chunks;
            chunks += (t.Master.numel() + Chunk - 1) / Chunk;
        }
        table.FirstChunk[tensors.Count] = chunks;
        var device = CudaDevice.Of(tensors[0].Master);
        var dtype = tensors[0].Working is null ? ScalarType.Float32 : tensors[0].Gradient.dtype;
        void** args = stackalloc void*[] { &table, &scalars };
        device.Launch(device.Module("adamw.cu").Function($"adamw_{KernelModule.Suffix(dtype)}"), chunks, args);
    }

    /// <summary>Same shape and device as the master, contiguous, and 16-byte aligned (float32) or 8-byte (half: 4 elements).</summary>
    static bool Fits(Tensor x, Tensor master) =>
        x.is_contiguous() && x.shape.SequenceEqual(master.shape) && x.device_index == master.device_index
        && CudaDevice.DataPointer(x) % (Chunk * x.ElementSize) == 0;

    /// <summary>Laid out as AdamWTensors in adamw.cu.</summary>
    [StructLayout(LayoutKind.Sequential)]
    struct AdamWTensors
    {
        public fixed long Master[MaxTensors];
        public fixed long ExpAvg[MaxTensors];
        public fixed long ExpAvgSq[MaxTensors];
        public fixed long Gradient[MaxTensors];
        public fixed long Working[MaxTensors];
        public fixed long Numel[MaxTensors];
        public fixed long FirstChunk[MaxTensors + 1];
        public int Count;
    }
}
