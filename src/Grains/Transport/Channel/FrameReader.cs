using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.ExceptionServices;
using TorchSharp;

namespace Orchestrator.Grains.Transport.Channel;

/// <summary>
/// Reads frames (FrameHeader describes the format) from one connection, validating each header completely before
/// allocating the tensor (from the server's <see cref="ReceiveBufferPool"/>), then reading the payload straight into
/// the tensor's storage.
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

    /// <summary>
    /// Reads the payload chunk by chunk into <paramref name="tensor"/>. Chunk i is hashed on the thread pool while chunk
    /// i+1 comes off the socket (it only reads memory the socket no longer writes), so hashing leaves the socket loop's
    /// critical path on hosts with spare cores; every chunk is still verified before this returns the tensor.
    /// </summary>
    async Task ReadPayloadAsync(FrameHeader frame, torch.Tensor tensor, CancellationToken cancellation)
    {
        if (frame.PayloadBytes == 0) return;
        using var flat = tensor.view(-1);
        long total = flat.NumberOfElements, chunkElements = frame.ChunkBytes / tensor.ElementSize, received = 0;
        var verifying = Task.CompletedTask;
        try
        {
            for (long start = 0, index = 0; start < total; start += chunkElements, index++)
            {
                using var chunk = flat.narrow(0, start, Math.Min(chunkElements, total - start));
                // The pointer stays valid after the view is disposed: the storage belongs to tensor, which outlives every hash.
                var memory = TensorMemory.Of(chunk).Memory;
                var got = await ReadUpToAsync(memory, frame, received, cancellation).ConfigureAwait(false);
                received += got;
                if (got < memory.Length || await ReadUpToAsync(checksum, frame, received, cancellation).ConfigureAwait(false) < checksum.Length)
                    throw Truncated(frame, received, innerException: null);

                var expected = BinaryPrimitives.ReadUInt64LittleEndian(checksum);
                var claimed = new ClaimedChunk(frame, index, start * tensor.ElementSize, memory, expected);
                await verifying.ConfigureAwait(false);
                if (start + chunkElements < total) verifying = Task.Run(() => Verify(claimed));
                else Verify(claimed); // the last chunk has nothing left to overlap with: spare the thread hop
            }
        }
        catch
        {
            // A hash still running reads the tensor the caller is about to dispose: let it end first. A corrupt chunk
            // came before whatever failed while the next one was read, so it is the error to report.
            await verifying.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (verifying.Exception?.InnerException is { } corrupt) ExceptionDispatchInfo.Throw(corrupt);
            throw;
        }
    }

    /// <summary>A received chunk and the checksum the frame gave for it.</summary>
    readonly record struct ClaimedChunk(FrameHeader Frame, long Index, long FirstByte, Memory<byte> Bytes, ulong Checksum);

    void Verify(ClaimedChunk chunk)
    {
        var actual = XxHash3.HashToUInt64(chunk.Bytes.Span);
        if (actual != chunk.Checksum)
            throw new InvalidDataException(
                $"data channel transfer {chunk.Frame.Transfer} from {peer}: checksum mismatch in chunk {chunk.Index} of {chunk.Frame.ChunkCount} " +
                $"(payload bytes {chunk.FirstByte} to {chunk.FirstByte + chunk.Bytes.Length}; computed 0x{actual:X16}, frame says 0x{chunk.Checksum:X16}).");
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
