using Orchestrator.Kernels.Cuda.Native;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda.Ipc;

/// <summary>
/// Another process's <see cref="SharedDeviceBuffer"/>, mapped into this process's current context with its write
/// event. Reads are queued on the legacy default stream behind a device-side wait for that event, so neither process
/// blocks, and the kernels that use the copy run after it in stream order.
/// </summary>
public sealed class MappedDeviceBuffer : IDisposable
{
    readonly CudaDevice device;
    ulong mapping;
    IntPtr written;

    /// <summary>Maps a buffer another process allocated on <paramref name="device"/>.</summary>
    /// <param name="device">The GPU the buffer lives on; its context must be this process's current one.</param>
    /// <param name="handles">The writer's <see cref="SharedDeviceBuffer.Handles"/>.</param>
    public MappedDeviceBuffer(CudaDevice device, ReadOnlySpan<byte> handles)
    {
        if (handles.Length != SharedDeviceBuffer.HandlesBytes)
            throw new ArgumentException($"a shared device buffer is named by {SharedDeviceBuffer.HandlesBytes} handle bytes; got {handles.Length}.");
        this.device = device;
        device.MakeCurrent();
        mapping = CudaDriver.OpenMemory(IpcHandle.From(handles[..IpcHandle.Size]));
        try
        {
            written = CudaDriver.OpenEvent(IpcHandle.From(handles[IpcHandle.Size..]));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Queues, after the writer's last write, a copy of the first bytes of the data area into <paramref name="destination"/> (contiguous, on this device).</summary>
    public void ReadInto(Tensor destination)
    {
        device.MakeCurrent();
        CudaDriver.WaitEvent(written);
        CudaDriver.CopyAsync((ulong)CudaDevice.DataPointer(destination), mapping + SharedDeviceBuffer.HeaderBytes,
            destination.numel() * destination.element_size());
    }

    /// <summary>Queues, after the reads before it, the word that tells the writer transfer <paramref name="sequence"/> was copied.</summary>
    public void MarkConsumed(ulong sequence)
    {
        device.MakeCurrent();
        CudaDriver.WriteWordAsync(mapping, sequence);
    }

    /// <summary>Waits for the queued reads, then unmaps the buffer and closes its event.</summary>
    public void Dispose()
    {
        device.MakeCurrent();
        CudaDriver.SynchronizeStream();   // no queued read or wait may outlive the mapping
        if (written != IntPtr.Zero) CudaDriver.DestroyEvent(written);
        if (mapping != 0) CudaDriver.CloseMemory(mapping);
        (written, mapping) = (IntPtr.Zero, 0);
    }
}
