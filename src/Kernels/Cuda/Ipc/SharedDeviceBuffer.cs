using Orchestrator.Kernels.Cuda.Native;
using static TorchSharp.torch;

namespace Orchestrator.Kernels.Cuda.Ipc;

/// <summary>
/// A device allocation that other processes on this host map through CUDA IPC, to receive tensors without a trip
/// through host memory. Its own cuMemAlloc, outside libtorch's caching allocator: the IPC handle names the whole
/// allocation, and it is never recycled for another tensor while a peer may still read it.
/// Layout: a header whose first 64-bit word is the sequence number of the last transfer a reader finished copying
/// (readers write it, see <see cref="MappedDeviceBuffer.MarkConsumed"/>), then <see cref="Capacity"/> data bytes.
/// An interprocess event, recorded after each write, lets the reader's stream wait for the bytes without this
/// process waiting for anything. Every call needs the device's context current on the calling thread.
/// </summary>
public sealed class SharedDeviceBuffer : IDisposable
{
    /// <summary>Bytes before the data: the consumed word, padded so the data stays 256-byte aligned.</summary>
    public const long HeaderBytes = 256;
    /// <summary>The length of <see cref="Handles"/>: the memory handle, then the event handle.</summary>
    public const int HandlesBytes = 2 * IpcHandle.Size;

    readonly CudaDevice device;
    ulong allocation;
    IntPtr written;   // the interprocess event recorded after each write
    /// <summary>The GPU the buffer is allocated on.</summary>
    public CudaDevice Device => device;
    /// <summary>Bytes of tensor data the buffer holds (its header aside).</summary>
    public long Capacity { get; }
    /// <summary>What a reader needs to map this buffer and wait for its writes.</summary>
    public byte[] Handles { get; }
    /// <summary>Sequence number of the last tensor written; the buffer is free again once a reader consumed it.</summary>
    public ulong Written { get; private set; }

    /// <summary>Allocates <paramref name="capacity"/> bytes of data on <paramref name="device"/>, shareable with other processes of this host.</summary>
    public SharedDeviceBuffer(CudaDevice device, long capacity)
    {
        (this.device, Capacity) = (device, capacity);
        device.MakeCurrent();
        allocation = CudaDriver.Allocate(HeaderBytes + capacity);
        try
        {
            CudaDriver.WriteWordAsync(allocation, 0);
            CudaDriver.SynchronizeStream();
            written = CudaDriver.CreateInterprocessEvent();
            Handles = [.. CudaDriver.ExportMemory(allocation).ToArray(), .. CudaDriver.ExportEvent(written).ToArray()];
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>True once a reader has copied out the last tensor written (a small read on a side stream: no wait for queued kernels).</summary>
    public bool IsConsumed
    {
        get
        {
            device.MakeCurrent();
            return CudaDriver.ReadWord(allocation, device.SideStream) == Written;
        }
    }

    /// <summary>
    /// Queues a copy of <paramref name="tensor"/> (on this buffer's device) into the data area as transfer
    /// <paramref name="sequence"/>, then the event a reader's stream waits for. Nothing waits here: the copy runs after
    /// the kernels that produce the tensor, in stream order.
    /// </summary>
    public void Write(Tensor tensor, ulong sequence)
    {
        using var contiguous = tensor.contiguous();
        long bytes = contiguous.numel() * contiguous.element_size();
        if (bytes > Capacity) throw new ArgumentException($"a tensor of {bytes} bytes does not fit a shared buffer of {Capacity}.");
        device.MakeCurrent();
        CudaDriver.CopyAsync(allocation + HeaderBytes, (ulong)CudaDevice.DataPointer(contiguous), bytes);
        CudaDriver.RecordEvent(written);
        Written = sequence;
    }

    /// <summary>Frees the allocation and its event.</summary>
    public void Dispose()
    {
        device.MakeCurrent();
        if (written != IntPtr.Zero) CudaDriver.DestroyEvent(written);
        if (allocation != 0) CudaDriver.Free(allocation);
        (written, allocation) = (IntPtr.Zero, 0);
    }
}
