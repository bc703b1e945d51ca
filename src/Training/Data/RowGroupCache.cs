namespace Orchestrator.Training.Data;

/// <summary>
/// The row groups of a streaming Parquet file decoded last, most recent first: consecutive batches mostly read the
/// same group or its successor in the shuffled order, so a few decoded groups save decoding one again per batch.
/// Older groups are freed.
/// </summary>
sealed class RowGroupCache(Func<int, SampleTensors> decode, int capacity) : IDisposable
{
    readonly LinkedList<(int Group, SampleTensors Samples)> recent = new();

    /// <summary>Row group <paramref name="group"/>, decoded now unless it is held; the cache owns it.</summary>
    public SampleTensors Get(int group)
    {
        var node = recent.First;
        while (node is not null && node.Value.Group != group) node = node.Next;
        if (node is null)
        {
            node = new LinkedListNode<(int, SampleTensors)>((group, decode(group)));
            if (recent.Count == capacity && recent.Last is { Value.Samples: var oldest })
            {
                oldest.Dispose();
                recent.RemoveLast();
            }
        }
        else
        {
            recent.Remove(node);
        }
        recent.AddFirst(node);
        return node.Value.Samples;
    }

    public void Dispose()
    {
        foreach (var (_, samples) in recent) samples.Dispose();
        recent.Clear();
    }
}
