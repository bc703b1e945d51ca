using System.Buffers.Binary;
using System.IO.Hashing;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>Writes one part of a tensor as a frame (FrameHeader describes the format) to a stream.</summary>
internal static class FrameWriter
{
    /// <summary>
    /// Writes <paramref name="header"/> and then the bytes of its part of <paramref name="flat"/> (the whole tensor,
    /// contiguous and one-dimensional: see <see cref="Flatten"/>) chunk by chunk.
    /// <paramref name="progress"/> is called after the header (0) and after every chunk with the part's payload bytes written so far.
    /// CPU tensors are written straight from their storage; others go through host staging buffers (see <see cref="WriteStagedAsync"/>).
    /// </summary>
    public static async Task WriteAsync(Stream stream, FrameHeader header, torch.Tensor flat, bool stageCpuTensors,
        Action<long> progress, CancellationToken cancellation)
    {
        var encoded = new byte[header.EncodedBytes];
        header.Encode(encoded);
        await stream.WriteAsync(encoded, cancellation).ConfigureAwait(false);
        progress(0);
        if (header.Part.Bytes == 0) return;

        var elementSize = flat.ElementSize;
        using var part = flat.narrow(0, header.Part.Offset / elementSize, header.Part.Bytes / elementSize);
        var chunkElements = header.ChunkBytes / elementSize;
        var checksum = new byte[FrameHeader.ChecksumBytes];
        if (flat.device_type == DeviceType.CPU && !stageCpuTensors)
            await WriteDirectAsync(stream, part, chunkElements, checksum, progress, cancellation).ConfigureAwait(false);
        else
            await WriteStagedAsync(stream, part, chunkElements, checksum, progress, cancellation).ConfigureAwait(false);
    }

    /// <summary>
    /// The tensor as the one-dimensional contiguous view the parts are cut from; a non-contiguous tensor is copied
    /// once here, not once per part. The caller disposes it.
    /// </summary>
    public static torch.Tensor Flatten(torch.Tensor tensor)
    {
        using var contiguous = tensor.contiguous();
        return contiguous.view(-1);
    }

    static async Task WriteDirectAsync(Stream stream, torch.Tensor flat, long chunkElements, byte[] checksum, Action<long> progress,
        CancellationToken cancellation)
    {
        long total = flat.NumberOfElements, written = 0;
        for (long start = 0; start < total; start += chunkElements)
        {
            using var chunk = flat.narrow(0, start, Math.Min(chunkElements, total - start));
            written += await WriteChunkAsync(stream, chunk, checksum, cancellation).ConfigureAwait(false);
            progress(written);
        }
    }

    /// <summary>
    /// Copies the tensor to the host one chunk at a time through two staging buffers (pinned when CUDA is there,
    /// so the device-to-host copy runs at full PCIe speed), copying chunk i+1 while chunk i is on the socket.
    /// Each copy is a blocking <c>copy_</c> on the tensor's device: it waits for the kernels that produced the
    /// tensor, which is what a sender needs anyway. TorchSharp has no stream or event API, so the overlap is
    /// between this thread's copy and the socket's asynchronous write, not between two copies.
    /// </summary>
    static async Task WriteStagedAsync(Stream stream, torch.Tensor flat, long chunkElements, byte[] checksum, Action<long> progress,
        CancellationToken cancellation)
    {
        long total = flat.NumberOfElements, written = 0;
        var buffers = new[] { StagingBuffer(chunkElements, flat.dtype), StagingBuffer(chunkElements, flat.dtype) };
        try
        {
            Stage(flat, 0, Math.Min(chunkElements, total), buffers[0]);
            for (long start = 0, index = 0; start < total; start += chunkElements, index++)
            {
                using var ready = buffers[index % 2].narrow(0, 0, Math.Min(chunkElements, total - start));
                var write = WriteChunkAsync(stream, ready, checksum, cancellation);
                try
                {
                    var next = start + chunkElements;
                    if (next < total) Stage(flat, next, Math.Min(chunkElements, total - next), buffers[(index + 1) % 2]);
                }
                finally
                {
                    // Never leave a write running over a buffer that is about to be disposed.
                    written += await write.ConfigureAwait(false);
                }
                progress(written);
            }
        }
        finally
        {
            foreach (var buffer in buffers) buffer.Dispose();
        }
    }

    static torch.Tensor StagingBuffer(long elements, torch.ScalarType dtype)
    {
        var pageable = torch.empty(elements, dtype);
        if (!torch.cuda.is_available()) return pageable;
        using (pageable) return pageable.pin_memory();
    }

    static void Stage(torch.Tensor flat, long start, long count, torch.Tensor buffer)
    {
        using var source = flat.narrow(0, start, count);
        using var destination = buffer.narrow(0, 0, count);
        destination.copy_(source);
    }

    /// <summary>
    /// Writes one chunk and then its checksum straight from the tensor's memory; returns the chunk's byte count.
    /// The chunk is hashed on the thread pool while the socket copies it (both only read it), so on hosts with spare
    /// cores the hash costs the socket loop nothing. <paramref name="checksum"/> is the frame's 8-byte scratch buffer.
    /// </summary>
    static async Task<int> WriteChunkAsync(Stream stream, torch.Tensor chunk, byte[] checksum, CancellationToken cancellation)
    {
        using var manager = TensorMemory.Of(chunk);
        var memory = manager.Memory;
        var hashing = Task.Run(() => XxHash3.HashToUInt64(memory.Span), CancellationToken.None);
        try
        {
            await stream.WriteAsync(memory, cancellation).ConfigureAwait(false);
        }
        catch
        {
            // Never leave a hash running over memory the caller may dispose once this fails.
            await ((Task)hashing).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }
        var hash = await hashing.ConfigureAwait(false);
        BinaryPrimitives.WriteUInt64LittleEndian(checksum, hash);
        await stream.WriteAsync(checksum, cancellation).ConfigureAwait(false);
        return memory.Length;
    }
}
