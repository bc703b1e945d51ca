using System.Buffers.Binary;
using System.IO.Hashing;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// The header of one data channel frame. This file is the whole wire format.
/// </summary>
/// <remarks>
/// A connection carries frames one after another, in one direction only (sender to receiver; the receiver
/// never writes). A frame carries one part of a transfer (FramePart): the whole payload, or one contiguous range
/// of it when the sender stripes a large transfer over several connections. All integers are little-endian. A frame is:
/// <code>
/// offset        size     field
/// 0             4        magic 0x4843544F ("OTCH" as bytes)
/// 4             2        version (2; version 1 had no part fields and 4 reserved bytes at offset 36)
/// 6             1        dtype code (WireDTypes: 1 float64, 2 float32, 3 float16, 4 bfloat16, 5 int64, 6 int32)
/// 7             1        rank r (0..8; 0 is a scalar of one element)
/// 8             16       transfer id (Guid.TryWriteBytes layout)
/// 24            8        payload length in bytes of the whole transfer (int64)
/// 32            4        chunk length in bytes (int32; a multiple of the element size, 1 .. 64 MiB)
/// 36            2        part index i (uint16; 0 .. n-1)
/// 38            2        part count n (uint16; 1 .. 64, and at most the transfer's chunk count when that is above 1)
/// 40            8        part offset: the first payload byte this frame carries (int64)
/// 48            8        part length: how many payload bytes this frame carries (int64)
/// 56            8*r      shape, r int64 sizes (of the whole tensor, the same in every part)
/// 56+8r         8        header checksum: XxHash3 (64-bit, seed 0) of bytes [0, 56+8r)
/// then the part's payload bytes: the tensor's elements in row-major order from the part offset, in chunks of the
/// chunk length (every one full length but the transfer's last), each followed by the 8-byte XxHash3 of that chunk's bytes.
/// </code>
/// Part i of n carries the chunks [i*c/n, (i+1)*c/n) of the transfer's c chunks (FramePart.Of); offset and length
/// must be exactly that range. Every part of a transfer repeats dtype, shape, payload length, chunk length and part count.
/// A receiver validates magic, version and rank from the first 56 bytes (rank says how long the header is),
/// then the header checksum, then dtype, chunk length, shape (no negative size; product times element size
/// equal to the payload length), the payload length against its configured maximum and the part fields, all before it
/// allocates anything. Any violation ends the connection: framing can no longer be trusted.
/// </remarks>
internal sealed record FrameHeader(Guid Transfer, byte DTypeCode, long[] Shape, long PayloadBytes, int ChunkBytes, FramePart Part)
{
    public const uint Magic = 0x4843544F;
    public const ushort Version = 2;
    public const int MaxRank = 8;
    public const int FixedBytes = 56;
    public const int ChecksumBytes = sizeof(ulong);
    public const int MaxChunkBytes = 64 << 20;
    public const int MaxEncodedBytes = FixedBytes + MaxRank * sizeof(long) + ChecksumBytes;

    public int EncodedBytes => EncodedLength(Shape.Length);

    /// <summary>How many chunks the whole transfer has.</summary>
    public long ChunkCount => FramePart.ChunkCount(PayloadBytes, ChunkBytes);

    /// <summary>What errors about this frame call it: the transfer, and the part when the transfer is striped.</summary>
    public string Subject => Part.Count == 1
        ? $"transfer {Transfer}"
        : $"transfer {Transfer} part {Part.Index} of {Part.Count} (payload bytes {Part.Offset} to {Part.End})";

    /// <summary>The headers of this transfer's <paramref name="count"/> parts.</summary>
    public FrameHeader[] Split(int count) =>
        [.. Enumerable.Range(0, count).Select(index => this with { Part = FramePart.Of(index, count, PayloadBytes, ChunkBytes) })];

    static int EncodedLength(int rank) => FixedBytes + rank * sizeof(long) + ChecksumBytes;

    /// <summary>The header a sender writes for <paramref name="tensor"/>; throws for what the format cannot carry.</summary>
    public static FrameHeader For(Guid transfer, torch.Tensor tensor, int chunkBytes)
    {
        var code = WireDTypes.Code(tensor.dtype);
        if (tensor.Dimensions > MaxRank)
            throw new ArgumentException($"transfer {transfer}: a tensor of rank {tensor.Dimensions} cannot be sent; the data channel carries rank {MaxRank} at most.");
        var payload = tensor.NumberOfElements * tensor.ElementSize;
        return new FrameHeader(transfer, code, tensor.shape, payload, chunkBytes, FramePart.Whole(payload));
    }

    public void Encode(Span<byte> destination)
    {
        var end = EncodedBytes - ChecksumBytes;
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Version);
        destination[6] = DTypeCode;
        destination[7] = (byte)Shape.Length;
        Transfer.TryWriteBytes(destination[8..24]);
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], PayloadBytes);
        BinaryPrimitives.WriteInt32LittleEndian(destination[32..], ChunkBytes);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[36..], (ushort)Part.Index);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[38..], (ushort)Part.Count);
        BinaryPrimitives.WriteInt64LittleEndian(destination[40..], Part.Offset);
        BinaryPrimitives.WriteInt64LittleEndian(destination[48..], Part.Bytes);
        for (int i = 0; i < Shape.Length; i++)
            BinaryPrimitives.WriteInt64LittleEndian(destination[(FixedBytes + i * sizeof(long))..], Shape[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[end..], XxHash3.HashToUInt64(destination[..end]));
    }

    /// <summary>The transfer id the first 56 bytes claim, read before anything is checked so that errors can name it.</summary>
    public static Guid ClaimedTransfer(ReadOnlySpan<byte> fixedPart) => new(fixedPart[8..24]);

    /// <summary>Checks magic, version and rank of the first 56 bytes; returns the length of the whole header.</summary>
    public static int LengthFromFixedPart(ReadOnlySpan<byte> fixedPart)
    {
        var transfer = ClaimedTransfer(fixedPart);
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart);
        if (magic != Magic)
            throw Invalid(transfer, $"not a data channel frame: magic is 0x{magic:X8}, expected 0x{Magic:X8}");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(fixedPart[4..]);
        if (version != Version)
            throw Invalid(transfer, $"frame version {version} is not supported (this build speaks version {Version})");
        var rank = fixedPart[7];
        if (rank > MaxRank)
            throw Invalid(transfer, $"rank {rank} exceeds the maximum of {MaxRank}");
        return EncodedLength(rank);
    }

    /// <summary>Validates a whole header (as sized by <see cref="LengthFromFixedPart"/>) and decodes it.</summary>
    public static FrameHeader Decode(ReadOnlySpan<byte> header, long maxPayloadBytes)
    {
        var transfer = ClaimedTransfer(header);
        var end = header.Length - ChecksumBytes;
        var expected = BinaryPrimitives.ReadUInt64LittleEndian(header[end..]);
        var actual = XxHash3.HashToUInt64(header[..end]);
        if (actual != expected)
            throw Invalid(transfer, $"header checksum mismatch (computed 0x{actual:X16}, frame says 0x{expected:X16})");

        var code = header[6];
        if (!WireDTypes.TryGet(code, out var dtype))
            throw Invalid(transfer, $"unknown dtype code {code}");
        var elementSize = Kernels.DTypeNames.ElementSize(dtype);
        var payload = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        if (payload < 0)
            throw Invalid(transfer, $"negative payload length {payload}");
        if (payload > maxPayloadBytes)
            throw Invalid(transfer, $"declared payload of {payload} bytes exceeds the configured maximum of {maxPayloadBytes} bytes");
        var chunk = BinaryPrimitives.ReadInt32LittleEndian(header[32..]);
        if (chunk <= 0 || chunk > MaxChunkBytes || chunk % elementSize != 0)
            throw Invalid(transfer, $"chunk length {chunk} is not a positive multiple of the element size {elementSize} up to {MaxChunkBytes}");

        var shape = new long[header[7]];
        long elements = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            shape[i] = BinaryPrimitives.ReadInt64LittleEndian(header[(FixedBytes + i * sizeof(long))..]);
            if (shape[i] < 0)
                throw Invalid(transfer, $"negative size {shape[i]} in dimension {i} of shape [{string.Join(", ", shape[..(i + 1)])}]");
            // Bounded by the payload limit, so a hostile shape cannot overflow the product.
            elements = shape[i] == 0 || elements == 0 ? 0 : elements > payload / shape[i] ? payload + 1 : elements * shape[i];
        }
        if (elements * elementSize != payload)
            throw Invalid(transfer, $"shape [{string.Join(", ", shape)}] of {elementSize}-byte elements does not match the payload length {payload}");
        return new FrameHeader(transfer, code, shape, payload, chunk, DecodePart(header, transfer, payload, chunk));
    }

    /// <summary>Checks the part fields against the payload they claim a range of (see FramePart for the split).</summary>
    static FramePart DecodePart(ReadOnlySpan<byte> header, Guid transfer, long payload, int chunk)
    {
        var part = new FramePart(BinaryPrimitives.ReadUInt16LittleEndian(header[36..]), BinaryPrimitives.ReadUInt16LittleEndian(header[38..]),
            BinaryPrimitives.ReadInt64LittleEndian(header[40..]), BinaryPrimitives.ReadInt64LittleEndian(header[48..]));
        var chunks = FramePart.ChunkCount(payload, chunk);
        if (part.Count < 1 || part.Count > FramePart.MaxCount)
            throw Invalid(transfer, $"part count {part.Count} is not between 1 and {FramePart.MaxCount}");
        if (part.Count > Math.Max(1, chunks))
            throw Invalid(transfer, $"{part.Count} parts for a payload of {chunks} chunks: every part must carry at least one chunk");
        if (part.Index >= part.Count)
            throw Invalid(transfer, $"part index {part.Index} is not below the part count {part.Count}");
        if (part.Offset < 0 || part.Bytes < 0 || part.Offset > payload || part.Bytes > payload - part.Offset)
            throw Invalid(transfer, $"part {part.Index} of {part.Count} claims {part.Bytes} bytes at offset {part.Offset}, outside the declared payload of {payload} bytes");
        var expected = FramePart.Of(part.Index, part.Count, payload, chunk);
        if (part != expected)
            throw Invalid(transfer, $"part {part.Index} of {part.Count} claims payload bytes {part.Offset} to {part.End}, but the split of {chunks} chunks " +
                $"into {part.Count} parts puts it at bytes {expected.Offset} to {expected.End}");
        return part;
    }

    static InvalidDataException Invalid(Guid transfer, string problem) =>
        new($"data channel transfer {transfer}: {problem}.");
}
