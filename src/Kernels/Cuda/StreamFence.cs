using Orchestrator.Kernels.Cuda.Native;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// A mark in a device's legacy default stream that the host waits for later: <see cref="Wait"/> returns once the
/// work queued before the last <see cref="Record"/> has run, however much was queued after it. Used to read a small
/// result (a non-blocking copy to pinned memory) without waiting for the kernels queued behind it.
/// Call it on a thread where the device's context is current (its executor).
/// </summary>
public sealed class StreamFence : IDisposable
{
    readonly CudaDevice device;
    IntPtr mark;

    /// <summary>A fence on cuda:<paramref name="ordinal"/>'s default stream.</summary>
    public StreamFence(int ordinal)
    {
        device = CudaDevice.For(ordinal);
        device.MakeCurrent();
        mark = CudaDriver.CreateEvent();
    }

    /// <summary>Marks the work queued so far.</summary>
    public void Record()
    {
        device.MakeCurrent();
        CudaDriver.RecordEvent(mark);
    }

    /// <summary>Blocks until the work before the last <see cref="Record"/> has run.</summary>
    public void Wait() => CudaDriver.SynchronizeEvent(mark);

    /// <summary>Destroys the event.</summary>
    public void Dispose()
    {
        if (mark == IntPtr.Zero) return;
        device.MakeCurrent();
        CudaDriver.DestroyEvent(mark);
        mark = IntPtr.Zero;
    }
}
