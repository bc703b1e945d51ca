using Orchestrator.Kernels.Cuda.Native;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Times GPU work with CUDA events on the default stream: warm-up runs first (module loads, NVRTC,
/// cuBLAS heuristics stay out of the numbers), then one event pair per repetition.
/// </summary>
public static class CudaTimer
{
    /// <summary>Milliseconds of each repetition of <paramref name="work"/> on <paramref name="device"/>.</summary>
    public static double[] Time(CudaDevice device, Action<int> work, int warmup, int repetitions)
    {
        for (int i = 0; i < warmup; i++) work(i);
        device.MakeCurrent();
        var starts = new IntPtr[repetitions];
        var ends = new IntPtr[repetitions];
        try
        {
            for (int i = 0; i < repetitions; i++)
            {
                starts[i] = CudaDriver.CreateEvent();
                ends[i] = CudaDriver.CreateEvent();
            }
            for (int i = 0; i < repetitions; i++)
            {
                device.MakeCurrent();
                CudaDriver.RecordEvent(starts[i]);
                work(warmup + i);
                device.MakeCurrent();
                CudaDriver.RecordEvent(ends[i]);
            }
            return Enumerable.Range(0, repetitions).Select(i => (double)CudaDriver.ElapsedMilliseconds(starts[i], ends[i])).ToArray();
        }
        finally
        {
            foreach (var e in starts.Concat(ends).Where(e => e != IntPtr.Zero)) CudaDriver.DestroyEvent(e);
        }
    }

    /// <summary>Waits for all work queued on the device.</summary>
    public static void Synchronize(CudaDevice device)
    {
        device.MakeCurrent();
        CudaDriver.Synchronize();
    }
}
