namespace Orchestrator.Training.Tests;

public class ShardAssignmentTests
{
    [Fact]
    public void Every_group_is_covered_exactly_once_in_balanced_contiguous_ranges()
    {
        for (int groups = 1; groups <= 40; groups++)
            for (int workers = 1; workers <= 45; workers++)
            {
                var ranges = ShardAssignment.Assign(groups, workers);
                Assert.Equal(Math.Min(groups, workers), ranges.Count);
                int next = 0;
                foreach (var r in ranges)
                {
                    Assert.Equal(next, r.First);       // contiguous, in order, no gaps or overlaps
                    Assert.True(r.Count >= 1);
                    next = r.End;
                }
                Assert.Equal(groups, next);
                Assert.True(ranges.Max(r => r.Count) - ranges.Min(r => r.Count) <= 1, $"N={groups} workers={workers}");
            }
    }

    [Fact]
    public void More_workers_than_groups_leaves_the_extra_workers_out()
    {
        Assert.Equal([new GroupRange(0, 1), new GroupRange(1, 1), new GroupRange(2, 1)], ShardAssignment.Assign(3, 8));
        Assert.Equal([new GroupRange(0, 3), new GroupRange(3, 2), new GroupRange(5, 2)], ShardAssignment.Assign(7, 3));
    }

    [Fact]
    public void Zero_groups_or_workers_is_an_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardAssignment.Assign(0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => ShardAssignment.Assign(2, 0));
    }
}
