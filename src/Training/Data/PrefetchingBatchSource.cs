using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Makes batch i+1 ready on a device (a GPU; the CPU works too, for tests) while step i trains: a background task reads it from the inner source (on the CPU),
/// copies it into pinned host memory and queues a non-blocking copy to the device, so the training thread's
/// <see cref="Get"/> finds it there instead of gathering rows and copying from pageable memory with the GPU idle.
/// Batch i is still a function of (seed, i): prefetching changes when a batch is made, not what it holds.
/// The inner source is only ever called by one thread at a time.
/// </summary>
public sealed class PrefetchingBatchSource(IBatchSource inner, Device device) : IBatchSource
{
    (long Index, Task<Batch> Batch)? next;

    /// <summary>The source batches come from (its held-out rows are read from it directly).</summary>
    public IBatchSource Inner => inner;

    /// <summary>Batch <paramref name="index"/> on the device; the caller owns it. Starts on batch index + 1.</summary>
    public Batch Get(long index)
    {
        var batch = next is { Index: var ready, Batch: var pending } && ready == index
            ? pending.GetAwaiter().GetResult()
            : Skip().Load(index);
        next = (index + 1, Task.Run(() => Load(index + 1)));
        return batch;
    }

    /// <summary>The batch on the device, through pinned memory: a pageable copy would block the thread that issues it.</summary>
    Batch Load(long index)
    {
        using var host = inner.Get(index);
        return new Batch(ToDevice(host.Features), ToDevice(host.Targets));
    }

    Tensor ToDevice(Tensor host)
    {
        if (device.type == DeviceType.CPU) return host.alias();   // nothing to copy (and no CUDA to pin with)
        using var pinned = host.pin_memory();
        // The pinned block is released only once the queued copy is done (libtorch's host allocator records it).
        return pinned.to(device, non_blocking: true);
    }

    /// <summary>Waits for and frees a prefetched batch nobody asked for (a jump, or the end).</summary>
    PrefetchingBatchSource Skip()
    {
        if (next is { Batch: var pending })
        {
            try
            {
                pending.GetAwaiter().GetResult().Dispose();
            }
            catch (Exception)
            {
                // A batch nobody asked for failed: whoever asks for it again gets the error from the inner source.
            }
            next = null;
        }
        return this;
    }

    public void Dispose()
    {
        Skip();
        inner.Dispose();
    }
}
