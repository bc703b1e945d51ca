using System.Diagnostics;
using Orchestrator.Kernels.Cuda;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Benchmarks;

/// <summary>
/// Times repeated work on one device: CUDA events on a GPU (device time, not host time), a stopwatch
/// on the CPU. <c>prepare</c> runs before each repetition outside the timed region (e.g. building the
/// autograd graph whose backward alone is timed).
/// </summary>
public sealed class DeviceTimer(Device device, int warmup, int repetitions)
{
    public Device Device { get; } = device;
    public bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>Median milliseconds of <paramref name="work"/>(i) over the repetitions.</summary>
    public double MedianMs(Action<int> work, Action<int>? prepare = null)
    {
        double[] times;
        if (IsCuda)
        {
            var cuda = CudaDevice.For(Device.index < 0 ? 0 : Device.index);
            if (prepare is null)
                times = CudaTimer.Time(cuda, work, warmup, repetitions);
            else
                times = Enumerable.Range(0, warmup + repetitions).Select(i =>
                {
                    prepare(i);
                    return CudaTimer.Time(cuda, _ => work(i), 0, 1)[0];
                }).Skip(warmup).ToArray();
        }
        else
        {
            times = new double[repetitions];
            for (int i = 0; i < warmup + repetitions; i++)
            {
                prepare?.Invoke(i);
                var watch = Stopwatch.StartNew();
                work(i);
                if (i >= warmup) times[i - warmup] = watch.Elapsed.TotalMilliseconds;
            }
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }

    /// <summary>Bytes of device memory in use (driver view: includes the caching allocator's reserve).</summary>
    public long UsedBytes()
    {
        if (!IsCuda) return 0;
        var cuda = CudaDevice.For(Device.index < 0 ? 0 : Device.index);
        CudaTimer.Synchronize(cuda);
        var (free, total) = cuda.MemoryInfo();
        return total - free;
    }
}
