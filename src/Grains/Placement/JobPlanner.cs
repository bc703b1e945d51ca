using Orchestrator.Training;

namespace Orchestrator.Grains.Placement;

/// <summary>
/// One worker of a job's plan: its key (silo, device, job, shard), the device it runs on, the groups it owns, and the
/// groups all of the job's workers on that device own together (each worker checks that they fit, since they are built at once).
/// </summary>
public sealed record PlannedWorker(WorkerKey Key, ClusterDevice Device, GroupRange Groups, int DeviceGroups);

/// <summary>
/// Where a job's workers go, from the devices the cluster advertises alone: the devices the spec selects
/// (<see cref="ClusterDevices.Select"/>) on silos not excluded, WorkersPerDevice slots on each, and contiguous balanced
/// group ranges over the slots in order (<see cref="ShardAssignment"/>). Pure: the same cluster and spec give the same plan.
/// </summary>
public static class JobPlanner
{
    public static PlannedWorker[] Plan(JobSpec job, IReadOnlyList<ClusterDevice> cluster, IReadOnlySet<string> excluded)
    {
        var available = cluster.Where(d => !excluded.Contains(d.Silo)).ToArray();
        var chosen = ClusterDevices.Select(available, job.Devices);
        if (chosen.Length == 0)
            throw new JobSpecException(nameof(JobSpec.Devices),
                $"no device in the cluster matches [{string.Join(", ", job.Devices)}]; it has [{string.Join(", ", available.AsEnumerable())}].");
        var slots = chosen.SelectMany(d => Enumerable.Repeat(d, job.WorkersPerDevice)).ToArray();
        var ranges = ShardAssignment.Assign(job.Shape.Groups, slots.Length);
        var onDevice = ranges.Select((groups, i) => (Device: slots[i].ToString(), groups.Count))
            .GroupBy(s => s.Device).ToDictionary(d => d.Key, d => d.Sum(s => s.Count));
        return ranges.Select((groups, i) =>
            new PlannedWorker(new WorkerKey(slots[i].Silo, slots[i].Device, job.Name, i), slots[i], groups, onDevice[slots[i].ToString()])).ToArray();
    }
}
