using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Orchestrator.Grains.Transport.Channel;

/// <summary>
/// Meets received tensors with the callers waiting for them, by transfer id. A tensor that arrives before its
/// waiter is held, within the count and byte limits of the options, until it is asked for or expires; so is a
/// failure, so that a late waiter learns what happened instead of timing out (failures hold no tensor and are
/// bounded by the expiry alone).
/// </summary>
internal sealed class TransferMailbox : IDisposable
{
    /// <summary>A tensor or a failure that arrived before anyone waited for it.</summary>
    readonly record struct Held(torch.Tensor? Tensor, Exception? Failure, long Bytes, long ArrivedAt);

    readonly DataChannelOptions options;
    readonly ILogger logger;
    readonly object gate = new();
    readonly Dictionary<Guid, TaskCompletionSource<torch.Tensor>> waiters = [];
    readonly Dictionary<Guid, Held> held = [];
    readonly Timer sweeper;
    int heldTensors;
    long heldBytes;
    string? closedBecause;

    public TransferMailbox(DataChannelOptions options, ILogger logger)
    {
        (this.options, this.logger) = (options, logger);
        var period = TimeSpan.FromTicks(Math.Clamp(options.HeldExpiry.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond * 10));
        sweeper = new Timer(_ => DropExpired(), null, period, period);
    }

    /// <summary>Hands a received tensor to its waiter, or holds it; the mailbox owns it from here.</summary>
    public void Deliver(Guid transfer, torch.Tensor tensor)
    {
        var bytes = tensor.NumberOfElements * tensor.ElementSize;
        lock (gate)
        {
            if (waiters.Remove(transfer, out var waiter))
            {
                waiter.SetResult(tensor);
                return;
            }
            if (closedBecause is not null || held.ContainsKey(transfer))
            {
                logger.LogWarning("Data channel transfer {Transfer} dropped: {Reason}.", transfer,
                    closedBecause ?? "a tensor with the same transfer id is already held");
                tensor.Dispose();
                return;
            }
            if (heldTensors + 1 > options.MaxHeldTransfers || heldBytes + bytes > options.MaxHeldBytes)
            {
                tensor.Dispose();
                var failure = new IOException(
                    $"data channel transfer {transfer} ({bytes} bytes) arrived before anyone waited for it and was dropped: " +
                    $"{heldTensors} tensors of {heldBytes} bytes were held already, the limits are {options.MaxHeldTransfers} tensors " +
                    $"and {options.MaxHeldBytes} bytes (DataChannelOptions.MaxHeldTransfers, MaxHeldBytes).");
                logger.LogWarning(failure, "Data channel transfer {Transfer} dropped.", transfer);
                held[transfer] = new Held(null, failure, 0, Environment.TickCount64);
                return;
            }
            held[transfer] = new Held(tensor, null, bytes, Environment.TickCount64);
            heldTensors++;
            heldBytes += bytes;
        }
    }

    /// <summary>Fails the transfer's waiter, or holds the failure for a waiter still to come.</summary>
    public void Fail(Guid transfer, Exception failure)
    {
        lock (gate)
        {
            if (waiters.Remove(transfer, out var waiter)) waiter.SetException(failure);
            else if (closedBecause is null && !held.ContainsKey(transfer))
                held[transfer] = new Held(null, failure, 0, Environment.TickCount64);
        }
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
            if (held.Remove(transfer, out var arrived))
                return Take(arrived);
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

    /// <summary>Fails every waiter with an <see cref="ObjectDisposedException"/> giving <paramref name="reason"/> and drops everything held.</summary>
    public void Close(string reason)
    {
        lock (gate)
        {
            if (closedBecause is not null) return;
            closedBecause = reason;
            foreach (var (transfer, waiter) in waiters)
                waiter.SetException(new ObjectDisposedException(nameof(DataChannelServer), $"data channel transfer {transfer} will not arrive: {reason}."));
            waiters.Clear();
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

    torch.Tensor Take(Held arrived)
    {
        if (arrived.Tensor is null)
            ExceptionDispatchInfo.Throw(arrived.Failure!);
        heldTensors--;
        heldBytes -= arrived.Bytes;
        return arrived.Tensor;
    }

    void DropExpired()
    {
        var cutoff = Environment.TickCount64 - (long)options.HeldExpiry.TotalMilliseconds;
        lock (gate)
        {
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
        }
    }
}
