using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// One transfer's tensor while its parts arrive, possibly over several connections at once: allocated once (from the
/// server's <see cref="ReceiveBufferPool"/>) at the first part, each part's reader fills its own range through a view
/// of it, complete when every part has arrived and been verified. Used under the <see cref="TransferMailbox"/>'s lock,
/// except <see cref="Touch"/>, which readers call per chunk.
/// </summary>
/// <remarks>
/// A reader's view holds a reference to the storage, so <see cref="Release"/> (the transfer failed or expired) never
/// frees memory a reader of another part is still writing into: libtorch frees it, or returns it to the pool, when
/// that reader disposes its view too.
/// </remarks>
internal sealed class TransferAssembly
{
    readonly FrameHeader first;
    readonly bool[] claimed;
    int arrived;
    long lastProgress;

    public TransferAssembly(FrameHeader first, ReceiveBufferPool buffers)
    {
        this.first = first;
        WireDTypes.TryGet(first.DTypeCode, out var dtype);
        // Read loops run on pool threads: keep the tensor out of any dispose scope one of them may have open, it is the waiter's.
        Tensor = buffers.Rent(first.Shape, dtype, first.PayloadBytes).DetachFromDisposeScope();
        claimed = new bool[first.Part.Count];
        Touch();
    }

    public Guid Transfer => first.Transfer;

    public long Bytes => first.PayloadBytes;

    /// <summary>The received tensor; whoever completes the assembly takes it over, until then <see cref="Release"/> frees it.</summary>
    public torch.Tensor Tensor { get; }

    /// <summary>What a stalled transfer's error says about how far it got.</summary>
    public string Progress => $"{arrived} of {claimed.Length} parts arrived, {claimed.Count(c => c) - arrived} more were arriving";

    /// <summary>
    /// A one-dimensional view of <paramref name="part"/>'s range for its reader to fill (the reader disposes it).
    /// Throws <see cref="InvalidDataException"/> for a part that disagrees with the first one or came before.
    /// </summary>
    public torch.Tensor Claim(FrameHeader part, string peer)
    {
        if (part.DTypeCode != first.DTypeCode || !part.Shape.SequenceEqual(first.Shape) || part.PayloadBytes != first.PayloadBytes ||
            part.ChunkBytes != first.ChunkBytes || part.Part.Count != first.Part.Count)
            throw new InvalidDataException(
                $"data channel {part.Subject} from {peer} does not match the part that came before it: it declares {Describe(part)}, that one declared {Describe(first)}.");
        if (claimed[part.Part.Index])
            throw new InvalidDataException($"data channel {part.Subject} from {peer} arrived a second time.");
        claimed[part.Part.Index] = true;
        Touch();
        using var flat = Tensor.view(-1);
        var elementSize = Tensor.ElementSize;
        return flat.narrow(0, part.Part.Offset / elementSize, part.Part.Bytes / elementSize);
    }

    /// <summary>Notes that bytes arrived, so that <see cref="StalledSince"/> measures from the last of them.</summary>
    public void Touch() => Volatile.Write(ref lastProgress, Environment.TickCount64);

    public bool StalledSince(long tick) => Volatile.Read(ref lastProgress) <= tick;

    /// <summary>Counts one claimed part as arrived and verified; true when it was the last one.</summary>
    public bool Arrived() => ++arrived == claimed.Length;

    public void Release() => Tensor.Dispose();

    static string Describe(FrameHeader frame)
    {
        WireDTypes.TryGet(frame.DTypeCode, out var dtype);
        return $"{dtype} [{string.Join(", ", frame.Shape)}], {frame.PayloadBytes} bytes in {frame.ChunkBytes}-byte chunks, {frame.Part.Count} parts";
    }
}
