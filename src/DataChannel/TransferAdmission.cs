namespace Orchestrator.DataChannel;

/// <summary>
/// Which transfers a server takes in: those the grains of its silo announced they expect
/// (<see cref="DataChannelServer.Expect"/>). While at least one announcement is live, a transfer up to the largest of
/// them is admitted; with none live, none is, because no job on the silo expects data. An authenticated peer can then
/// still send, but not make the silo allocate memory no job of it asked for.
/// </summary>
internal sealed class TransferAdmission
{
    readonly object gate = new();
    // One entry per live announcement; a silo runs a handful of jobs, so the largest is found by looking at all.
    readonly List<long> live = [];

    public IDisposable Expect(long maxTransferBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxTransferBytes);
        lock (gate) live.Add(maxTransferBytes);
        return new Announcement(this, maxTransferBytes);
    }

    /// <summary>Null when a transfer of <paramref name="payloadBytes"/> is admitted, else why not (for its error).</summary>
    public string? Refusal(long payloadBytes)
    {
        lock (gate)
        {
            if (live.Count == 0) return "no job on this silo expects data (none announced a transfer with DataChannelServer.Expect)";
            var largest = live.Max();
            return payloadBytes <= largest ? null
                : $"it is larger than any transfer a job on this silo expects (the largest announced is {largest} bytes, DataChannelServer.Expect)";
        }
    }

    void Withdraw(long maxTransferBytes)
    {
        lock (gate) live.Remove(maxTransferBytes);
    }

    /// <summary>One live announcement; disposing it withdraws it, once.</summary>
    sealed class Announcement(TransferAdmission admission, long maxTransferBytes) : IDisposable
    {
        int withdrawn;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref withdrawn, 1) == 0) admission.Withdraw(maxTransferBytes);
        }
    }
}
