using Orchestrator.Grains.Placement;
using Orchestrator.Training;

namespace Orchestrator.Grains.Tests;

/// <summary>The coordinator's placement, as a pure function of the advertised devices and the spec: no cluster needed.</summary>
public class JobPlannerTests
{
    static readonly ClusterDevice[] Cluster =
    [
        new("silo-a", "cuda:0", "10.0.0.1:1"), new("silo-a", "cuda:1", "10.0.0.1:1"),
        new("silo-b", "cuda:0", "10.0.0.2:1"), new("silo-b", "cuda:1", "10.0.0.2:1"),
        new("silo-c", "cpu", "10.0.0.3:1"),
    ];

    static JobSpec Job(int groups, int workersPerDevice, params string[] devices) =>
        new() { Name = "plan", Shape = new ModelShape { Groups = groups }, WorkersPerDevice = workersPerDevice, Devices = devices };

    static string[] Describe(PlannedWorker[] plan) =>
        plan.Select(w => $"{w.Key} {w.Groups} on-device {w.DeviceGroups}").ToArray();

    [Fact]
    public void A_device_name_selects_it_on_every_silo_and_the_groups_are_split_in_contiguous_balanced_ranges()
    {
        var plan = JobPlanner.Plan(Job(11, 2, "cuda:1"), Cluster, new HashSet<string>());
        Assert.Equal(
        [
            "silo-a/cuda:1/plan/0 [0, 3) on-device 6",
            "silo-a/cuda:1/plan/1 [3, 6) on-device 6",
            "silo-b/cuda:1/plan/2 [6, 9) on-device 5",
            "silo-b/cuda:1/plan/3 [9, 11) on-device 5",
        ], Describe(plan));
        Assert.All(plan, w => Assert.Equal((w.Key.Silo, w.Key.Device), (w.Device.Silo, w.Device.Device)));
    }

    [Fact]
    public void Excluded_silos_get_no_workers_and_a_silo_qualified_name_selects_one_device()
    {
        var plan = JobPlanner.Plan(Job(5, 1, "silo-a/cuda:0", "cuda:1", "cpu"), Cluster, new HashSet<string> { "silo-b" });
        Assert.Equal(
        [
            "silo-a/cuda:0/plan/0 [0, 2) on-device 2",
            "silo-a/cuda:1/plan/1 [2, 4) on-device 2",
            "silo-c/cpu/plan/2 [4, 5) on-device 1",
        ], Describe(plan));
    }

    [Fact]
    public void No_selection_takes_every_device_and_slots_beyond_the_groups_get_no_worker()
    {
        var plan = JobPlanner.Plan(Job(3, 2, []), Cluster, new HashSet<string>());
        Assert.Equal(
        [
            "silo-a/cuda:0/plan/0 [0, 1) on-device 2",
            "silo-a/cuda:0/plan/1 [1, 2) on-device 2",
            "silo-a/cuda:1/plan/2 [2, 3) on-device 1",
        ], Describe(plan));
    }

    [Fact]
    public void A_selection_that_matches_nothing_is_refused_naming_what_the_cluster_has()
    {
        var e = Assert.Throws<JobSpecException>(() => JobPlanner.Plan(Job(4, 1, "cuda:7"), Cluster, new HashSet<string> { "silo-a" }));
        Assert.Equal(nameof(JobSpec.Devices), e.Field);
        Assert.Contains("[cuda:7]", e.Message);
        Assert.Contains("silo-b/cuda:0, silo-b/cuda:1, silo-c/cpu", e.Message);
        Assert.DoesNotContain("silo-a", e.Message);
    }
}
