namespace Orchestrator.Training;

/// <summary>Splits N groups over workers in contiguous ranges whose sizes differ by at most one.</summary>
public static class ShardAssignment
{
    /// <summary>
    /// One range per worker that gets any groups: min(groups, workers) ranges covering [0, groups) in order, the
    /// first (groups % workers) of them one group larger. Workers beyond N get nothing and are not created.
    /// </summary>
    public static IReadOnlyList<GroupRange> Assign(int groups, int workers)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groups);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        int used = Math.Min(groups, workers);
        int baseSize = groups / used, larger = groups % used;
        var ranges = new GroupRange[used];
        for (int w = 0, first = 0; w < used; w++)
        {
            int count = baseSize + (w < larger ? 1 : 0);
            ranges[w] = new GroupRange(first, count);
            first += count;
        }
        return ranges;
    }
}
