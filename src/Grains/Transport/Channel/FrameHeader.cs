using System.Buffers.Binary;
using System.IO.Hashing;
using TorchSharp;

namespace Orchestrator.Grains.Transport.Channel;

/// <summary>
/// The header of one data channel frame. This file is the whole wire format.
/// </summary>
/// <remarks>
/// A connection carries frames one after another, in one direction only (sender to receiver; the receiver
/// never writes). All integers are little-endian. A frame is:
/// <code>
/// offset        size     field
/// 0             4        magic 0x4843544F ("OTCH" as bytes)
/// 4             2        version (1)
/// 6             1        dtype code (WireDTypes: 1 float64, 2 float32, 3 float16, 4 bfloat16, 5 int64, 6 int32)
/// 7             1        rank r (0..8; 0 is a scalar of one element)
/// 8             16       transfer id (Guid.TryWriteBytes layout)
/// 24            8        payload length in bytes (int64)
/// 32            4        chunk length in bytes (int32; a multiple of the element size, 1 .. 64 MiB)
/// 36            4        reserved, 0
/// 40            8*r      shape, r int64 sizes
/// 40+8r         8        header checksum: XxHash3 (64-bit, seed 0) of bytes [0, 40+8r)
/// then the payload: the tensor's elements in row-major order, in ceil(payload / chunk) chunks, every
/// chunk full length but the last, each followed by the 8-byte XxHash3 of that chunk's bytes.
/// </code>
/// A receiver validates magic, version and rank from the first 40 bytes (rank says how long the header is),
/// then the header checksum, then dtype, chunk length, shape (no negative size; product times element size
/// equal to the payload length) and the payload length against its configured maximum, all before it
/// allocates anything. Any violation ends the connection: framing can no longer be trusted.
/// </remarks>
internal sealed record FrameHeader(Guid Transfer, byte DTypeCode, long[] Shape, long PayloadBytes, int ChunkBytes)
{
    public const uint Magic = 0x4843544F;
    public const ushort Version = 1;
    public const int MaxRank = 8;
    public const int FixedBytes = 40;
    public const int ChecksumBytes = sizeof(ulong);
    public const int MaxChunkBytes = 64 << 20;
    public const int MaxEncodedBytes = FixedBytes + MaxRank * sizeof(long) + ChecksumBytes;

    public int EncodedBytes => EncodedLength(Shape.Length);

    public int ChunkCount => PayloadBytes == 0 ? 0 : (int)((PayloadBytes + ChunkBytes - 1) / ChunkBytes);

    static int EncodedLength(int rank) => FixedBytes + rank * sizeof(long) + ChecksumBytes;

    /// <summary>The header a sender writes for <paramref name="tensor"/>; throws for what the format cannot carry.</summary>
    public static FrameHeader For(Guid transfer, torch.Tensor tensor, int chunkBytes)
    {
        var code = WireDTypes.Code(tensor.dtype);
        if (tensor.Dimensions > MaxRank)
            throw new ArgumentException($"transfer {transfer}: a tensor of rank {tensor.Dimensions} cannot be sent; the data channel carries rank {MaxRank} at most.");
        return new FrameHeader(transfer, code, tensor.shape, tensor.NumberOfElements * tensor.ElementSize, chunkBytes);
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
        BinaryPrimitives.WriteUInt32LittleEndian(destination[36..], 0);
        for (int i = 0; i < Shape.Length; i++)
            BinaryPrimitives.WriteInt64LittleEndian(destination[(FixedBytes + i * sizeof(long))..], Shape[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[end..], XxHash3.HashToUInt64(destination[..end]));
    }

    /// <summary>The transfer id the first 40 bytes claim, read before anything is checked so that errors can name it.</summary>
    public static Guid ClaimedTransfer(ReadOnlySpan<byte> fixedPart) => new(fixedPart[8..24]);

    /// <summary>Checks magic, version and rank of the first 40 bytes; returns the length of the whole header.</summary>
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
        if (!WireDTypes.TryGet(code, out _, out var elementSize))
            throw Invalid(transfer, $"unknown dtype code {code}");
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
        return new FrameHeader(transfer, code, shape, payload, chunk);
    }

    static InvalidDataException Invalid(Guid transfer, string problem) =>
        new($"data channel transfer {transfer}: {problem}.");
}
