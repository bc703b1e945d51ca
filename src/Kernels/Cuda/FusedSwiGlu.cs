using System.Reflection;
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
    const uint BlockSize = 256;

    /// <summary>hidden (rows, H) = silu(g) * u from gateUp (rows, 2H).</summary>
    public static void Forward(Tensor gateUp, Tensor hidden)
    {
        var (device, rows, h, vector) = Prepare(gateUp, hidden);
        IntPtr gu = CudaDevice.DataPointer(gateUp), hd = CudaDevice.DataPointer(hidden);
        void** args = stackalloc void*[] { &gu, &hd, &rows, &h };
        Launch(device, device.SwiGluKernels.Forward(gateUp.dtype, vector), rows, h, vector, args);
    }

    /// <summary>dGateUp (rows, 2H) from gateUp (rows, 2H) and dHidden (rows, H).</summary>
    public static void Backward(Tensor gateUp, Tensor dHidden, Tensor dGateUp)
    {
        var (device, rows, h, vector) = Prepare(gateUp, dHidden, dGateUp);
        IntPtr gu = CudaDevice.DataPointer(gateUp), dh = CudaDevice.DataPointer(dHidden), dgu = CudaDevice.DataPointer(dGateUp);
        void** args = stackalloc void*[] { &gu, &dh, &dgu, &rows, &h };
        Launch(device, device.SwiGluKernels.Backward(gateUp.dtype, vector), rows, h, vector, args);
    }

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

    static void Launch(CudaDevice device, IntPtr function, long rows, long h, int vector, void** args)
    {
        long threads = rows * (h / vector);
        if (threads == 0) return;
        // One 16-byte chunk per thread and as many blocks as that takes: a grid capped at 64 blocks per
        // SM that strided over the rest ran the backward at 55% of copy bandwidth instead of 96-99%
        // (docs/kernel-notes.md). The kernels still stride, for grids past the launch limit.
        long grid = Math.Min((threads + BlockSize - 1) / BlockSize, int.MaxValue);
        device.MakeCurrent();
        CudaDriver.Launch(function, (uint)grid, BlockSize, args);
    }

    /// <summary>The compiled kernels of one device.</summary>
    internal sealed class Module
    {
        readonly Dictionary<string, IntPtr> functions = new();

        public static Module Load(CudaDevice device)
        {
            using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("swiglu.cu")
                ?? throw new InvalidOperationException("swiglu.cu is missing from the assembly resources.");
            var source = new StreamReader(stream).ReadToEnd();
            var cubin = Nvrtc.CompileToCubin(source, "swiglu.cu", device.ComputeMajor, device.ComputeMinor);
            var module = CudaDriver.LoadModule(cubin);
            var loaded = new Module();
            foreach (var (name, widths) in new[] { ("f32", new[] { 4, 1 }), ("bf16", new[] { 8, 1 }), ("f16", new[] { 8, 1 }) })
                foreach (var v in widths)
                    foreach (var direction in new[] { "forward", "backward" })
                    {
                        var entry = $"swiglu_{direction}_{name}_v{v}";
                        loaded.functions[entry] = CudaDriver.Function(module, entry);
                    }
            return loaded;
        }

        public IntPtr Forward(ScalarType dtype, int vector) => functions[$"swiglu_forward_{Suffix(dtype)}_v{vector}"];
        public IntPtr Backward(ScalarType dtype, int vector) => functions[$"swiglu_backward_{Suffix(dtype)}_v{vector}"];

        static string Suffix(ScalarType dtype) => dtype switch
        {
            ScalarType.Float32 => "f32",
            ScalarType.BFloat16 => "bf16",
            ScalarType.Float16 => "f16",
            _ => throw new ArgumentException($"the fused SwiGLU kernels support Float32, BFloat16 and Float16, not {dtype}."),
        };
    }
}
