using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda;

/// <summary>
/// A device allocation that other processes on this host map through CUDA IPC, to receive tensors without a trip
/// through host memory. Its own cuMemAlloc, outside libtorch's caching allocator: the IPC handle names the whole
/// allocation, and it is never recycled for another tensor while a peer may still read it.
/// Layout: a header whose first 64-bit word is the sequence number of the last transfer a reader finished copying
/// (readers write it, see <see cref="MappedDeviceBuffer.MarkConsumed"/>), then <see cref="Capacity"/> data bytes.
/// Every call needs the device's context current on the calling thread (the device executor's).
/// </summary>
public sealed class SharedDeviceBuffer : IDisposable
{
    /// <summary>Bytes before the data: the consumed word, padded so the data stays 256-byte aligned.</summary>
    public const long HeaderBytes = 256;

    readonly CudaDevice device;
    ulong allocation;
    public CudaDevice Device => device;
    public long Capacity { get; }
    public IpcMemoryHandle Handle { get; }
    /// <summary>Sequence number of the last tensor written; the buffer is free again once a reader consumed it.</summary>
    public ulong Written { get; private set; }

    public SharedDeviceBuffer(CudaDevice device, long capacity)
    {
        (this.device, Capacity) = (device, capacity);
        device.MakeCurrent();
        allocation = CudaDriver.Allocate(HeaderBytes + capacity);
        try
        {
            CudaDriver.WriteWordAsync(allocation, 0);
            CudaDriver.SynchronizeStream();
            Handle = CudaDriver.ExportMemory(allocation);
        }
        catch
        {
            CudaDriver.Free(allocation);
            throw;
        }
    }

    /// <summary>True once a reader has copied out the last tensor written (a device read: it waits for queued work).</summary>
    public bool IsConsumed => CudaDriver.ReadWord(allocation) == Written;

    /// <summary>
    /// Copies <paramref name="tensor"/> (on this buffer's device) into the data area as transfer <paramref name="sequence"/>
    /// and waits until the copy is done, so that a reader in another process, which cannot see this process's stream,
    /// finds the bytes in place as soon as it learns the sequence number.
    /// </summary>
    public void Write(Tensor tensor, ulong sequence)
    {
        using var contiguous = tensor.contiguous();
        long bytes = contiguous.numel() * contiguous.element_size();
        if (bytes > Capacity) throw new ArgumentException($"a tensor of {bytes} bytes does not fit a shared buffer of {Capacity}.");
        device.MakeCurrent();
        CudaDriver.CopyAsync(allocation + HeaderBytes, (ulong)CudaDevice.DataPointer(contiguous), bytes);
        CudaDriver.SynchronizeStream();
        Written = sequence;
    }

    public void Dispose()
    {
        if (allocation == 0) return;
        device.MakeCurrent();
        CudaDriver.Free(allocation);
        allocation = 0;
    }
}
