using System.Buffers.Binary;
using System.IO.Hashing;
using TorchSharp;

namespace Orchestrator.Grains.Transport.Channel;

/// <summary>
/// Reads frames (FrameHeader describes the format) from one connection, validating each header completely before
/// allocating the tensor (from the server's <see cref="ReceiveBufferPool"/>), then reading the payload straight into the tensor's storage.
/// </summary>
internal sealed class FrameReader(Stream stream, long maxPayloadBytes, ReceiveBufferPool buffers, string peer)
{
    readonly byte[] header = new byte[FrameHeader.MaxEncodedBytes];
    readonly byte[] checksum = new byte[FrameHeader.ChecksumBytes];

    /// <summary>The transfer whose frame is being read (as its header claims), or null between frames: a failure belongs to it.</summary>
    public Guid? CurrentTransfer { get; private set; }

    /// <summary>The next frame's transfer and CPU tensor (the caller owns it), or null when the peer closed the connection between frames.</summary>
    public async Task<(Guid Transfer, torch.Tensor Tensor)?> ReadAsync(CancellationToken cancellation)
    {
        CurrentTransfer = null;
        var got = await stream.ReadAtLeastAsync(header.AsMemory(0, FrameHeader.FixedBytes), FrameHeader.FixedBytes,
            throwOnEndOfStream: false, cancellation).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < FrameHeader.FixedBytes)
            throw new IOException($"data channel connection from {peer} closed in the middle of a frame header ({got} of {FrameHeader.FixedBytes} bytes).");
        var transfer = FrameHeader.ClaimedTransfer(header);
        CurrentTransfer = transfer;

        var length = FrameHeader.LengthFromFixedPart(header);
        var rest = length - FrameHeader.FixedBytes;
        if (await stream.ReadAtLeastAsync(header.AsMemory(FrameHeader.FixedBytes, rest), rest, throwOnEndOfStream: false,
                cancellation).ConfigureAwait(false) < rest)
            throw new IOException($"data channel transfer {transfer} from {peer}: connection closed in the middle of the frame header.");
        var frame = FrameHeader.Decode(header.AsSpan(0, length), maxPayloadBytes);

        WireDTypes.TryGet(frame.DTypeCode, out var dtype, out _);
        // Read loops run on pool threads: keep the tensor out of any dispose scope one of them may have open, it is the waiter's.
        var tensor = buffers.Rent(frame.Shape, dtype, frame.PayloadBytes).DetachFromDisposeScope();
        try
        {
            await ReadPayloadAsync(frame, tensor, cancellation).ConfigureAwait(false);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        CurrentTransfer = null;
        return (transfer, tensor);
    }

    async Task ReadPayloadAsync(FrameHeader frame, torch.Tensor tensor, CancellationToken cancellation)
    {
        if (frame.PayloadBytes == 0) return;
        using var flat = tensor.view(-1);
        long total = flat.NumberOfElements, chunkElements = frame.ChunkBytes / tensor.ElementSize, received = 0;
        for (long start = 0, index = 0; start < total; start += chunkElements, index++)
        {
            using var chunk = flat.narrow(0, start, Math.Min(chunkElements, total - start));
            using var manager = TensorMemory.Of(chunk);
            var memory = manager.Memory;
            var got = await ReadUpToAsync(memory, frame, received, cancellation).ConfigureAwait(false);
            received += got;
            if (got < memory.Length || await ReadUpToAsync(checksum, frame, received, cancellation).ConfigureAwait(false) < checksum.Length)
                throw Truncated(frame, received, innerException: null);

            var expected = BinaryPrimitives.ReadUInt64LittleEndian(checksum);
            var actual = XxHash3.HashToUInt64(memory.Span);
            if (actual != expected)
                throw new InvalidDataException(
                    $"data channel transfer {frame.Transfer} from {peer}: checksum mismatch in chunk {index} of {frame.ChunkCount} " +
                    $"(payload bytes {start * tensor.ElementSize} to {received}; computed 0x{actual:X16}, frame says 0x{expected:X16}).");
        }
    }

    /// <summary>Reads until <paramref name="into"/> is full or the peer closed; returns the count read.</summary>
    async Task<int> ReadUpToAsync(Memory<byte> into, FrameHeader frame, long received, CancellationToken cancellation)
    {
        try
        {
            return await stream.ReadAtLeastAsync(into, into.Length, throwOnEndOfStream: false, cancellation).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // A reset or a socket error rather than a clean close: still say how far the transfer got.
            throw Truncated(frame, received, e);
        }
    }

    IOException Truncated(FrameHeader frame, long received, Exception? innerException) =>
        new($"data channel transfer {frame.Transfer} from {peer}: connection lost after {received} of {frame.PayloadBytes} payload bytes arrived.",
            innerException);
}
