using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// Assembles received transfers from their parts (<see cref="TransferAssembly"/>) and meets them with the callers
/// waiting for them, by transfer id. A transfer no job of the silo announced (<see cref="TransferAdmission"/>) is
/// refused at its first frame, before anything is allocated, and its failure is held like any other. A tensor that
/// arrives before its waiter is held, within the count and byte limits of the options, until it is asked for or
/// expires; transfers still arriving count against the same limits from their first frame on, and fail as stalled
/// when no chunk arrives for the expiry. A failure is held too, so that a late waiter learns what happened instead of
/// timing out and the failed transfer's remaining parts are dropped (failures hold no tensor and are bounded by the
/// expiry alone).
/// </summary>
internal sealed class TransferMailbox : IDisposable
{
    /// <summary>A tensor or a failure that arrived before anyone waited for it.</summary>
    readonly record struct Held(torch.Tensor? Tensor, Exception? Failure, long Bytes, long ArrivedAt);

    readonly DataChannelOptions options;
    readonly ILogger logger;
    readonly ReceiveBufferPool buffers;
    readonly TransferAdmission admission;
    readonly object gate = new();
    readonly Dictionary<Guid, TaskCompletionSource<torch.Tensor>> waiters = [];
    readonly Dictionary<Guid, TransferAssembly> arriving = [];
    readonly Dictionary<Guid, Held> held = [];
    readonly Timer sweeper;
    // Held tensors and transfers still arriving, which hold their tensor already.
    int heldTensors;
    long heldBytes;
    long refusedTransfers;
    long allocatedTransfers;
    string? closedBecause;

    public TransferMailbox(DataChannelOptions options, ILogger logger, ReceiveBufferPool buffers, TransferAdmission admission)
    {
        (this.options, this.logger, this.buffers, this.admission) = (options, logger, buffers, admission);
        var period = TimeSpan.FromTicks(Math.Clamp(options.HeldExpiry.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond * 10));
        sweeper = new Timer(_ => DropExpired(), null, period, period);
    }

    /// <summary>
    /// Where the payload of a part whose header just arrived goes: a view of its transfer's tensor (allocated at the
    /// transfer's first part) for the reader to fill and dispose, or null when the part is to be read and dropped (its
    /// transfer failed, expired or was refused: no job announced it or it is beyond the holding limits; a tensor under
    /// its id is held already; or the mailbox is closed). Throws <see cref="InvalidDataException"/> for a part that
    /// disagrees with its transfer's others.
    /// </summary>
    public (torch.Tensor View, TransferAssembly Assembly)? BeginPart(FrameHeader part, string peer)
    {
        lock (gate)
        {
            if (arriving.TryGetValue(part.Transfer, out var assembly))
                return (assembly.Claim(part, peer), assembly);
            if (closedBecause is not null)
                return null;
            if (held.TryGetValue(part.Transfer, out var earlier))
            {
                logger.LogWarning("Data channel {Part} from {Peer} dropped: {Reason}.", part.Subject, peer,
                    earlier.Failure is { } failed ? $"the transfer failed already ({failed.Message})" : "a tensor with the same transfer id is already held");
                return null;
            }
            if (admission.Refusal(part.PayloadBytes) is { } unexpected)
            {
                Refuse(part, new IOException($"data channel transfer {part.Transfer} ({part.PayloadBytes} bytes) from {peer} was refused: {unexpected}."));
                return null;
            }
            if (!waiters.ContainsKey(part.Transfer) && (heldTensors + 1 > options.MaxHeldTransfers || heldBytes + part.PayloadBytes > options.MaxHeldBytes))
            {
                Refuse(part, new IOException(
                    $"data channel transfer {part.Transfer} ({part.PayloadBytes} bytes) arrived before anyone waited for it and was dropped: " +
                    $"{heldTensors} tensors of {heldBytes} bytes were held already (received or arriving), the limits are {options.MaxHeldTransfers} " +
                    $"tensors and {options.MaxHeldBytes} bytes (DataChannelOptions.MaxHeldTransfers, MaxHeldBytes)."));
                return null;
            }
            assembly = new TransferAssembly(part, buffers);
            allocatedTransfers++;
            arriving[part.Transfer] = assembly;
            heldTensors++;
            heldBytes += assembly.Bytes;
            return (assembly.Claim(part, peer), assembly);
        }
    }

    /// <summary>What was refused and allocated so far and what is held now (the server adds its refused connections).</summary>
    public DataChannelCounters Counters()
    {
        lock (gate) return new DataChannelCounters(0, refusedTransfers, allocatedTransfers, heldTensors, heldBytes);
    }

    /// <summary>One part of <paramref name="assembly"/> arrived and was verified; the last one hands the tensor to its waiter or holds it.</summary>
    public void PartArrived(TransferAssembly assembly)
    {
        lock (gate)
        {
            // Not there any more: the transfer failed or expired while this part arrived, and its tensor is released.
            if (!arriving.TryGetValue(assembly.Transfer, out var current) || current != assembly || !assembly.Arrived()) return;
            arriving.Remove(assembly.Transfer);
            if (waiters.Remove(assembly.Transfer, out var waiter))
            {
                heldTensors--;
                heldBytes -= assembly.Bytes;
                waiter.SetResult(assembly.Tensor);
                return;
            }
            // Counted against the limits since its first part already.
            held[assembly.Transfer] = new Held(assembly.Tensor, null, assembly.Bytes, Environment.TickCount64);
        }
    }

    /// <summary>Fails the transfer (releasing its tensor if it was still arriving) and its waiter; the failure is held for a waiter still to come.</summary>
    public void Fail(Guid transfer, Exception failure)
    {
        lock (gate) FailLocked(transfer, failure);
    }

    public async Task<torch.Tensor> ReceiveAsync(Guid transfer, TimeSpan timeout, CancellationToken cancellation)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"data channel transfer {transfer}: the timeout must be positive or infinite.");
        TaskCompletionSource<torch.Tensor> waiter;
        lock (gate)
        {
            if (closedBecause is not null)
                throw new ObjectDisposedException(nameof(DataChannelServer), $"cannot receive data channel transfer {transfer}: {closedBecause}.");
            // The sweeper runs on a timer, which a busy thread pool can delay: expiry must not depend on it.
            DropExpiredLocked();
            if (held.TryGetValue(transfer, out var arrived))
                return Take(transfer, arrived);
            if (waiters.ContainsKey(transfer))
                throw new InvalidOperationException($"data channel transfer {transfer} already has a waiter; each transfer is received once.");
            waiter = new TaskCompletionSource<torch.Tensor>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiters[transfer] = waiter;
        }

        try
        {
            return await waiter.Task.WaitAsync(timeout, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && cancellation.IsCancellationRequested))
        {
            bool stillWaiting;
            lock (gate)
            {
                stillWaiting = waiters.TryGetValue(transfer, out var current) && current == waiter;
                if (stillWaiting) waiters.Remove(transfer);
            }
            // Gone from the table means it was completed just now: the outcome wins over the timeout.
            if (!stillWaiting) return await waiter.Task.ConfigureAwait(false);
            if (e is TimeoutException)
                throw new TimeoutException($"data channel transfer {transfer} did not arrive within {timeout}.");
            throw;
        }
    }

    /// <summary>Fails every waiter with an <see cref="ObjectDisposedException"/> giving <paramref name="reason"/> and drops everything held or arriving.</summary>
    public void Close(string reason)
    {
        lock (gate)
        {
            if (closedBecause is not null) return;
            closedBecause = reason;
            foreach (var (transfer, waiter) in waiters)
                waiter.SetException(new ObjectDisposedException(nameof(DataChannelServer), $"data channel transfer {transfer} will not arrive: {reason}."));
            waiters.Clear();
            foreach (var assembly in arriving.Values) assembly.Release();
            arriving.Clear();
            foreach (var entry in held.Values) entry.Tensor?.Dispose();
            held.Clear();
            (heldTensors, heldBytes) = (0, 0);
        }
    }

    public void Dispose()
    {
        sweeper.Dispose();
        Close("the mailbox was disposed");
    }

    /// <summary>
    /// Logs the refusal of <paramref name="part"/>'s transfer and fails the transfer with it (its waiter, if any, and
    /// the parts still to come); the caller reads the payload and drops it.
    /// </summary>
    void Refuse(FrameHeader part, IOException refusal)
    {
        refusedTransfers++;
        logger.LogWarning("{Refusal}", refusal.Message);
        FailLocked(part.Transfer, refusal);
    }

    void FailLocked(Guid transfer, Exception failure)
    {
        if (arriving.Remove(transfer, out var assembly))
        {
            assembly.Release();
            heldTensors--;
            heldBytes -= assembly.Bytes;
        }
        if (waiters.Remove(transfer, out var waiter)) waiter.SetException(failure);
        // Held even when a waiter got it: parts of the transfer still to come are dropped while it is there.
        Hold(transfer, new Held(null, failure, 0, Environment.TickCount64));
    }

    /// <summary>Holds <paramref name="entry"/> unless something is held under <paramref name="transfer"/> already (the first outcome wins).</summary>
    void Hold(Guid transfer, Held entry)
    {
        if (closedBecause is null) held.TryAdd(transfer, entry);
    }

    /// <summary>The held tensor, which leaves the mailbox, or the held failure, which stays until it expires.</summary>
    torch.Tensor Take(Guid transfer, Held arrived)
    {
        if (arrived.Tensor is null)
            ExceptionDispatchInfo.Throw(arrived.Failure!);
        held.Remove(transfer);
        heldTensors--;
        heldBytes -= arrived.Bytes;
        return arrived.Tensor;
    }

    void DropExpired()
    {
        lock (gate) DropExpiredLocked();
    }

    void DropExpiredLocked()
    {
        var cutoff = Environment.TickCount64 - (long)options.HeldExpiry.TotalMilliseconds;
        foreach (var (transfer, entry) in held)
        {
            if (entry.ArrivedAt > cutoff) continue;
            held.Remove(transfer);
            if (entry.Tensor is null) continue;
            logger.LogWarning("Data channel transfer {Transfer} ({Bytes} bytes) expired: nobody asked for it within {Expiry}.",
                transfer, entry.Bytes, options.HeldExpiry);
            entry.Tensor.Dispose();
            heldTensors--;
            heldBytes -= entry.Bytes;
        }
        foreach (var (transfer, assembly) in arriving)
        {
            if (!assembly.StalledSince(cutoff)) continue;
            var stalled = new IOException(
                $"data channel transfer {transfer} ({assembly.Bytes} bytes) stalled and was dropped: {assembly.Progress}, and no chunk arrived " +
                $"for {options.HeldExpiry} (DataChannelOptions.HeldExpiry).");
            logger.LogWarning(stalled, "Data channel transfer {Transfer} stalled.", transfer);
            FailLocked(transfer, stalled);
        }
    }
}
