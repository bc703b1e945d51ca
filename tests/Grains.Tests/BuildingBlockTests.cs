using Orchestrator.Grains.Execution;
using Orchestrator.Grains.Placement;

namespace Orchestrator.Grains.Tests;

/// <summary>The pieces under the grains, without a cluster.</summary>
public class BuildingBlockTests
{
    [Fact]
    public async Task A_device_executor_runs_work_in_order_on_its_own_thread_and_returns_errors()
    {
        using var executor = new DeviceExecutor("cpu");
        var order = new List<int>();
        var threads = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => executor.RunAsync(() =>
        {
            order.Add(i);
            return Environment.CurrentManagedThreadId;
        })));
        Assert.Equal(Enumerable.Range(0, 20), order);
        Assert.Single(threads.Distinct());
        Assert.NotEqual(Environment.CurrentManagedThreadId, threads[0]);
        Assert.Equal("device cpu", await executor.RunAsync(() => Thread.CurrentThread.Name));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => executor.RunAsync<int>(() => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", e.Message);
        Assert.Equal(3, await executor.RunAsync(() => 3));   // still serving after a failure
    }

    [Fact]
    public void Worker_keys_round_trip_and_bad_keys_are_named()
    {
        var key = new WorkerKey("gpu-host-1", "cuda:3", "job.a", 7);
        Assert.Equal("gpu-host-1/cuda:3/job.a/7", key.ToString());
        Assert.Equal(key, WorkerKey.Parse(key.ToString()));
        Assert.Contains("'a/b/c'", Assert.Throws<ArgumentException>(() => WorkerKey.Parse("a/b/c")).Message);
        Assert.Throws<ArgumentException>(() => WorkerKey.Parse("a/b/c/x"));
    }

    [Fact]
    public void Jobs_select_devices_by_name_on_every_silo_or_on_one_silo()
    {
        ClusterDevice[] cluster = [new("a", "cuda:0", "x"), new("a", "cuda:1", "x"), new("b", "cuda:0", "y"), new("c", "cpu", "z")];
        Assert.Equal(cluster, ClusterDevices.Select(cluster, []));
        Assert.Equal(["a/cuda:0", "b/cuda:0"], ClusterDevices.Select(cluster, ["cuda:0"]).Select(d => d.ToString()));
        Assert.Equal(["a/cuda:1", "c/cpu"], ClusterDevices.Select(cluster, ["a/cuda:1", "cpu"]).Select(d => d.ToString()));
        Assert.Empty(ClusterDevices.Select(cluster, ["b/cuda:1"]));
        Assert.Equal(["cuda:0", "cuda:1"], ClusterDevices.Parse(" cuda:0, cuda:1 ,"));
    }
}
