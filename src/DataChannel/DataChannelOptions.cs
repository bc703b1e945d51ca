namespace Orchestrator.DataChannel;

/// <summary>
/// Limits and timeouts of the data channel's server and client, and the secret they authenticate each other with.
/// <see cref="Secret"/> has no default: a server or client refuses to start without it.
/// </summary>
public sealed record DataChannelOptions
{
    /// <summary>
    /// The cluster secret: each connection opens with a mutual HMAC-SHA256 proof of it (ChannelHandshake), so only
    /// silos of the cluster can send, and a sender streams tensors only to a server that knows it too. At least
    /// <see cref="MinSecretBytes"/> bytes; silos take it from Cluster:Secret. Required.
    /// </summary>
    public byte[]? Secret { get; init; }

    /// <summary>The shortest <see cref="Secret"/> accepted.</summary>
    public const int MinSecretBytes = 16;

    /// <summary>
    /// How long the handshake of a new connection may take on either side; a peer that connects and says nothing is
    /// dropped after it.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

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

    /// <summary>
    /// The largest payload a server accepts, whatever its silo's jobs announce (DataChannelServer.Expect); a frame
    /// declaring more is rejected before anything is allocated and ends its connection.
    /// </summary>
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

    /// <summary>The default limits and timeouts, without a <see cref="Secret"/>: give one with <c>with</c>.</summary>
    public static DataChannelOptions Default { get; } = new();

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first setting out of range, or the missing secret.</summary>
    public void Validate()
    {
        CheckedSecret();
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentException($"{nameof(HandshakeTimeout)} {HandshakeTimeout} must be positive.");
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

    /// <summary>The <see cref="Secret"/>; throws an <see cref="ArgumentException"/> when there is none or it is too short.</summary>
    internal byte[] CheckedSecret()
    {
        if (Secret is null)
            throw new ArgumentException($"the data channel has no {nameof(Secret)}: it authenticates every connection with the cluster " +
                "secret (Cluster:Secret), and neither a server nor a client starts without one.");
        if (Secret.Length < MinSecretBytes)
            throw new ArgumentException($"the data channel's {nameof(Secret)} has {Secret.Length} bytes; the cluster secret (Cluster:Secret) " +
                $"needs at least {MinSecretBytes}.");
        return Secret;
    }
}
