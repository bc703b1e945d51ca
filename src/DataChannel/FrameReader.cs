using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.ExceptionServices;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// Reads frames (FrameHeader describes the format) from one connection, validating each header completely before the
/// <see cref="TransferMailbox"/> allocates its transfer's tensor, then reading the part's payload straight into its
/// range of the tensor's storage.
/// </summary>
internal sealed class FrameReader(Stream stream, long maxPayloadBytes, TransferMailbox mailbox, string peer)
{
    /// <summary>How much of a dropped part is read at a time to be thrown away.</summary>
    const int DiscardBytes = 64 << 10;

    readonly byte[] header = new byte[FrameHeader.MaxEncodedBytes];
    readonly byte[] checksum = new byte[FrameHeader.ChecksumBytes];

    /// <summary>The transfer whose frame is being read (as its header claims), or null between frames: a failure belongs to it.</summary>
    public Guid? CurrentTransfer { get; private set; }

    /// <summary>Reads the next frame into its transfer (or drops it, see <see cref="TransferMailbox.BeginPart"/>); false when the peer closed the connection between frames.</summary>
    public async Task<bool> ReadAsync(CancellationToken cancellation)
    {
        CurrentTransfer = null;
        var got = await stream.ReadAtLeastAsync(header.AsMemory(0, FrameHeader.FixedBytes), FrameHeader.FixedBytes,
            throwOnEndOfStream: false, cancellation).ConfigureAwait(false);
        if (got == 0) return false;
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

        if (mailbox.BeginPart(frame, peer) is not (var view, var assembly))
            await DiscardPayloadAsync(frame, cancellation).ConfigureAwait(false);
        else
        {
            using (view) await ReadPayloadAsync(frame, view, assembly.Touch, cancellation).ConfigureAwait(false);
            mailbox.PartArrived(assembly);
        }
        CurrentTransfer = null;
        return true;
    }

    /// <summary>
    /// Reads the part's payload chunk by chunk into <paramref name="part"/> (the one-dimensional view of its range),
    /// calling <paramref name="progress"/> per chunk. Chunk i is hashed on the thread pool while chunk i+1 comes off the
    /// socket (it only reads memory the socket no longer writes), so hashing leaves the socket loop's critical path on
    /// hosts with spare cores; every chunk is still verified before this returns.
    /// </summary>
    async Task ReadPayloadAsync(FrameHeader frame, torch.Tensor part, Action progress, CancellationToken cancellation)
    {
        if (frame.Part.Bytes == 0) return;
        long total = part.NumberOfElements, elementSize = part.ElementSize, chunkElements = frame.ChunkBytes / elementSize, received = 0;
        var verifying = Task.CompletedTask;
        try
        {
            for (long start = 0, index = frame.Part.Offset / frame.ChunkBytes; start < total; start += chunkElements, index++)
            {
                using var chunk = part.narrow(0, start, Math.Min(chunkElements, total - start));
                // The pointer stays valid after the chunk's view is disposed: part holds the storage and outlives every hash.
                var memory = TensorMemory.Of(chunk).Memory;
                var got = await ReadUpToAsync(memory, frame, received, cancellation).ConfigureAwait(false);
                received += got;
                if (got < memory.Length || await ReadUpToAsync(checksum, frame, received, cancellation).ConfigureAwait(false) < checksum.Length)
                    throw Truncated(frame, received, innerException: null);
                progress();

                var expected = BinaryPrimitives.ReadUInt64LittleEndian(checksum);
                var claimed = new ClaimedChunk(frame, index, frame.Part.Offset + start * elementSize, memory, expected);
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

    /// <summary>Reads a dropped part's payload and checksums without keeping them, so that the connection's next frame can be read.</summary>
    async Task DiscardPayloadAsync(FrameHeader frame, CancellationToken cancellation)
    {
        var remaining = frame.Part.Bytes + FramePart.ChunkCount(frame.Part.Bytes, frame.ChunkBytes) * FrameHeader.ChecksumBytes;
        var discard = ArrayPool<byte>.Shared.Rent(DiscardBytes);
        try
        {
            for (long skipped = 0; skipped < remaining;)
            {
                var got = await stream.ReadAsync(discard.AsMemory(0, (int)Math.Min(discard.Length, remaining - skipped)), cancellation).ConfigureAwait(false);
                if (got == 0)
                    throw new IOException($"data channel {frame.Subject} from {peer}: connection lost after {skipped} of the {remaining} bytes of a dropped part.");
                skipped += got;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(discard);
        }
    }

    /// <summary>A received chunk and the checksum the frame gave for it.</summary>
    readonly record struct ClaimedChunk(FrameHeader Frame, long Index, long FirstByte, Memory<byte> Bytes, ulong Checksum);

    void Verify(ClaimedChunk chunk)
    {
        var actual = XxHash3.HashToUInt64(chunk.Bytes.Span);
        if (actual != chunk.Checksum)
            throw new InvalidDataException(
                $"data channel {chunk.Frame.Subject} from {peer}: checksum mismatch in chunk {chunk.Index} of {chunk.Frame.ChunkCount} " +
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
        new($"data channel {frame.Subject} from {peer}: connection lost after {received} of {frame.Part.Bytes} payload bytes arrived.",
            innerException);
}
