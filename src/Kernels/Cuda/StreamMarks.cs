using Orchestrator.Kernels.Cuda.Native;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Events recorded one after another on a device's default stream (where TorchSharp and our kernels run), read once
/// the work before them has run: device time between marks, free of host time. Call it on a thread where the device
/// may be made current.
/// </summary>
public sealed class StreamMarks : IDisposable
{
    readonly CudaDevice device;
    readonly List<IntPtr> events = [];

    /// <summary>Marks on cuda:<paramref name="ordinal"/>'s default stream.</summary>
    public StreamMarks(int ordinal) => device = CudaDevice.For(ordinal);

    /// <summary>Marks recorded so far.</summary>
    public int Count => events.Count;

    /// <summary>Records a mark behind the work queued so far.</summary>
    public void Record()
    {
        device.MakeCurrent();
        var mark = CudaDriver.CreateEvent();
        events.Add(mark);
        CudaDriver.RecordEvent(mark);
    }

    /// <summary>Milliseconds of device time from mark <paramref name="from"/> to mark <paramref name="to"/>; waits for the later one.</summary>
    public double ElapsedMs(int from, int to)
    {
        device.MakeCurrent();
        CudaDriver.SynchronizeEvent(events[to]);
        return CudaDriver.ElapsedMilliseconds(events[from], events[to]);
    }

    /// <summary>Destroys the events.</summary>
    public void Dispose()
    {
        device.MakeCurrent();
        foreach (var mark in events) CudaDriver.DestroyEvent(mark);
        events.Clear();
    }
}
