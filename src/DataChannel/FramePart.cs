namespace Orchestrator.DataChannel;

/// <summary>
/// Which contiguous byte range of a transfer's payload one frame carries: a large transfer is striped over several
/// connections as parts, each its own frame (FrameHeader describes the fields), so that several cores copy it
/// through the kernel at once. A transfer sent whole is part 0 of 1.
/// </summary>
/// <remarks>
/// The split is fixed by the format rather than chosen freely by a sender: part i of n carries the transfer's chunks
/// [i*c/n, (i+1)*c/n) of its c chunks. Every part therefore starts on a chunk boundary (its chunks are the transfer's
/// chunks and keep their checksums' meaning), carries at least one chunk when n &lt;= c, and a receiver that checks
/// each part's claimed range against the split and refuses a part index twice knows the parts tile the payload
/// exactly, without tracking ranges.
/// </remarks>
internal readonly record struct FramePart(int Index, int Count, long Offset, long Bytes)
{
    /// <summary>The most parts one transfer may have; the wire format has room for 65535.</summary>
    public const int MaxCount = 64;

    public long End => Offset + Bytes;

    /// <summary>The only part of a transfer sent in one frame.</summary>
    public static FramePart Whole(long payloadBytes) => new(0, 1, 0, payloadBytes);

    /// <summary>Part <paramref name="index"/> of the split of a payload into <paramref name="count"/> parts (see the remarks).</summary>
    public static FramePart Of(int index, int count, long payloadBytes, int chunkBytes)
    {
        var chunks = ChunkCount(payloadBytes, chunkBytes);
        // Int128: a payload near long.MaxValue in one-element chunks times the part count would overflow a long.
        var firstChunk = (long)((Int128)chunks * index / count);
        var endChunk = (long)((Int128)chunks * (index + 1) / count);
        var offset = (long)Int128.Min((Int128)firstChunk * chunkBytes, payloadBytes);
        var end = (long)Int128.Min((Int128)endChunk * chunkBytes, payloadBytes);
        return new FramePart(index, count, offset, end - offset);
    }

    public static long ChunkCount(long bytes, int chunkBytes) => bytes == 0 ? 0 : (bytes - 1) / chunkBytes + 1;
}
