using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// Another process's <see cref="SharedDeviceBuffer"/>, mapped into this process's current context. Reads are queued on
/// the legacy default stream, so the kernels that use the copy run after it without a host wait.
/// </summary>
public sealed class MappedDeviceBuffer : IDisposable
{
    readonly CudaDevice device;
    ulong mapping;

    public MappedDeviceBuffer(CudaDevice device, IpcMemoryHandle handle)
    {
        this.device = device;
        device.MakeCurrent();
        mapping = CudaDriver.OpenMemory(handle);
    }

    /// <summary>Queues a copy of the first bytes of the data area into <paramref name="destination"/> (contiguous, on this device).</summary>
    public void ReadInto(Tensor destination)
    {
        device.MakeCurrent();
        CudaDriver.CopyAsync((ulong)CudaDevice.DataPointer(destination), mapping + SharedDeviceBuffer.HeaderBytes,
            destination.numel() * destination.element_size());
    }

    /// <summary>Queues, after the reads before it, the word that tells the writer transfer <paramref name="sequence"/> was copied.</summary>
    public void MarkConsumed(ulong sequence)
    {
        device.MakeCurrent();
        CudaDriver.WriteWordAsync(mapping, sequence);
    }

    public void Dispose()
    {
        if (mapping == 0) return;
        device.MakeCurrent();
        CudaDriver.SynchronizeStream();   // no queued read may outlive the mapping
        CudaDriver.CloseMemory(mapping);
        mapping = 0;
    }
}
