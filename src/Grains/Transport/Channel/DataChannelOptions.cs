namespace Orchestrator.Grains.Transport.Channel;

/// <summary>Limits and timeouts of the data channel's server and client.</summary>
public sealed record DataChannelOptions
{
    /// <summary>Payload bytes per checksummed chunk a sender writes; a multiple of 8 so that every dtype's elements fit whole.</summary>
    public int ChunkBytes { get; init; } = DefaultChunkBytes;

    /// <summary>The default of <see cref="ChunkBytes"/>, for command line defaults.</summary>
    public const int DefaultChunkBytes = 4 << 20;

    /// <summary>
    /// How many TCP connections a client keeps to each server. A transfer of two chunks or more is striped over them in
    /// as many parts (at most one per chunk), so that several cores copy it through the kernel at once; 1 sends every
    /// transfer whole on one connection.
    /// </summary>
    public int Connections { get; init; } = DefaultConnections;

    /// <summary>The default of <see cref="Connections"/>, for command line defaults.</summary>
    public const int DefaultConnections = 4;

    /// <summary>The largest payload a server accepts; a frame declaring more is rejected before anything is allocated.</summary>
    public long MaxPayloadBytes { get; init; } = 4L << 30;

    /// <summary>
    /// How many received tensors a server holds for transfers nobody waits for yet; transfers still arriving count too
    /// (a transfer nobody waits for is refused at its first frame when the limit is reached).
    /// </summary>
    public int MaxHeldTransfers { get; init; } = 256;

    /// <summary>
    /// How many bytes of received tensors a server holds for transfers nobody waits for yet; transfers still arriving
    /// count with their whole payload from their first frame on, awaited or not, since their tensor is allocated then.
    /// </summary>
    public long MaxHeldBytes { get; init; } = 8L << 30;

    /// <summary>
    /// How long a server holds a tensor (or a failure) that nobody has asked for before dropping it, and how long a
    /// transfer still arriving may go without a single chunk arriving before it fails as stalled.
    /// </summary>
    public TimeSpan HeldExpiry { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long a client waits for a TCP connection to a server.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one write (a header or a chunk) may take before a client gives the connection up as stalled.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many bytes of freed receive buffers a server keeps to reuse for later transfers (received tensors that were
    /// disposed); 0 allocates every received tensor fresh. Reuse spares the page faults of first touching fresh memory.
    /// </summary>
    public long ReceivePoolBytes { get; init; } = 1L << 30;

    /// <summary>Kernel send and receive buffer size per socket; 0 leaves the operating system's autotuning alone.</summary>
    public int SocketBufferBytes { get; init; } = 4 << 20;

    /// <summary>Sends CPU tensors through the staging buffers GPU tensors use, so that path can be tested without a GPU.</summary>
    internal bool StageCpuTensors { get; init; }

    public static DataChannelOptions Default { get; } = new();

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (ChunkBytes <= 0 || ChunkBytes % 8 != 0 || ChunkBytes > FrameHeader.MaxChunkBytes)
            throw new ArgumentException($"{nameof(ChunkBytes)} {ChunkBytes} must be a positive multiple of 8 up to {FrameHeader.MaxChunkBytes}.");
        if (Connections < 1 || Connections > FramePart.MaxCount)
            throw new ArgumentException($"{nameof(Connections)} {Connections} must be between 1 and {FramePart.MaxCount}.");
        if (MaxPayloadBytes < 0) throw new ArgumentException($"{nameof(MaxPayloadBytes)} {MaxPayloadBytes} must not be negative.");
        if (MaxHeldTransfers < 0) throw new ArgumentException($"{nameof(MaxHeldTransfers)} {MaxHeldTransfers} must not be negative.");
        if (MaxHeldBytes < 0) throw new ArgumentException($"{nameof(MaxHeldBytes)} {MaxHeldBytes} must not be negative.");
        if (HeldExpiry <= TimeSpan.Zero) throw new ArgumentException($"{nameof(HeldExpiry)} {HeldExpiry} must be positive.");
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException($"{nameof(ConnectTimeout)} {ConnectTimeout} must be positive.");
        if (WriteTimeout <= TimeSpan.Zero) throw new ArgumentException($"{nameof(WriteTimeout)} {WriteTimeout} must be positive.");
        if (ReceivePoolBytes < 0) throw new ArgumentException($"{nameof(ReceivePoolBytes)} {ReceivePoolBytes} must not be negative.");
        if (SocketBufferBytes < 0) throw new ArgumentException($"{nameof(SocketBufferBytes)} {SocketBufferBytes} must not be negative.");
    }
}
