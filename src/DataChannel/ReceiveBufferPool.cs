using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// Native memory for received tensors, reused between transfers: a fresh <c>torch.empty</c> of many megabytes is a
/// fresh mmap, and the page faults of its first touch made the receiver the bottleneck (loopback on the 2-core VM:
/// fresh allocation plus first touch 1.1 GB/s, the same writes into reused memory 5.3 GB/s).
/// </summary>
/// <remarks>
/// Ownership: <see cref="Rent"/> hands out a tensor whose storage is a block of this pool; the caller owns the tensor
/// exactly like one from <c>torch.empty</c>. libtorch calls back when the last tensor or view over the block is gone,
/// and only then does the block return to the free list, so a block is never handed out twice while anything still
/// references it. Free blocks are kept up to <see cref="DataChannelOptions.ReceivePoolBytes"/> in total (the oldest
/// returned are released first); lent blocks do not count, they belong to their tensors. A block is reused for a
/// request of at least half its size, so a pooled tensor never holds more than twice the memory it needs.
/// After <see cref="Dispose"/> free blocks are released and lent ones are released when they come back.
/// </remarks>
internal sealed unsafe class ReceiveBufferPool(long maxFreeBytes) : IDisposable
{
    /// <summary>
    /// Below this glibc's malloc serves (and reuses) allocations from its heap rather than with a fresh mmap
    /// (its initial M_MMAP_THRESHOLD), so pooling would save nothing.
    /// </summary>
    public const long MinPooledBytes = 128 << 10;

    /// <summary>libtorch's CPU allocator aligns to 64 bytes; vectorized kernels expect at least that.</summary>
    const nuint Alignment = 64;

    readonly record struct Block(IntPtr Data, long Capacity);

    /// <summary>Every lent block by its address: libtorch's deleter gets nothing but the address.</summary>
    static readonly ConcurrentDictionary<IntPtr, (ReceiveBufferPool Pool, Block Block)> lent = new();

    readonly object gate = new();
    // Oldest returned first, so eviction takes from the front.
    readonly List<Block> free = [];
    long freeBytes;
    bool disposed;

    /// <summary>An uninitialized CPU tensor of <paramref name="shape"/> (<paramref name="bytes"/> bytes of <paramref name="dtype"/>); the caller owns it.</summary>
    public torch.Tensor Rent(long[] shape, torch.ScalarType dtype, long bytes)
    {
        if (bytes < MinPooledBytes || bytes > maxFreeBytes) return torch.empty(shape, dtype);
        var block = TakeFree(bytes) ?? Allocate(bytes);
        lent[block.Data] = (this, block);
        try
        {
            return NativeBlobTensor.Over(block.Data, shape, dtype, &Released);
        }
        catch
        {
            // libtorch never took the block, so its deleter will not run.
            lent.TryRemove(block.Data, out _);
            Return(block);
            throw;
        }
    }

    /// <summary>
    /// Whether <paramref name="data"/> starts a block that a pool has lent and not got back (a lent block is neither
    /// reused nor released): what tells a pooled tensor from fresh memory, and a block still held from one given back.
    /// </summary>
    public static bool IsLent(IntPtr data) => lent.ContainsKey(data);

    /// <summary>Releases the free blocks; blocks still lent are released as their tensors go.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            foreach (var block in free) NativeMemory.AlignedFree((void*)block.Data);
            free.Clear();
            freeBytes = 0;
        }
    }

    /// <summary>The smallest free block of <paramref name="bytes"/> to twice that, or null.</summary>
    Block? TakeFree(long bytes)
    {
        lock (gate)
        {
            int best = -1;
            for (int i = 0; i < free.Count; i++)
                if (free[i].Capacity >= bytes && free[i].Capacity <= 2 * bytes && (best < 0 || free[i].Capacity < free[best].Capacity))
                    best = i;
            if (best < 0) return null;
            var block = free[best];
            free.RemoveAt(best);
            freeBytes -= block.Capacity;
            return block;
        }
    }

    static Block Allocate(long bytes) => new((IntPtr)NativeMemory.AlignedAlloc((nuint)bytes, Alignment), bytes);

    void Return(Block block)
    {
        lock (gate)
        {
            if (disposed)
            {
                NativeMemory.AlignedFree((void*)block.Data);
                return;
            }
            free.Add(block);
            freeBytes += block.Capacity;
            while (freeBytes > maxFreeBytes)
            {
                NativeMemory.AlignedFree((void*)free[0].Data);
                freeBytes -= free[0].Capacity;
                free.RemoveAt(0);
            }
        }
    }

    /// <summary>libtorch's deleter for every pooled block: the last reference to the block's storage is gone.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    static void Released(IntPtr data)
    {
        if (lent.TryRemove(data, out var owner)) owner.Pool.Return(owner.Block);
    }
}
