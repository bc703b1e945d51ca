namespace Orchestrator.Grains.Placement;

/// <summary>
/// The key of a worker grain, "{silo}/{device}/{job}/{shard}": it names the silo and the device the worker must
/// live on, so <see cref="DevicePlacementDirector"/> can place it there and any silo computes the same answer.
/// </summary>
public readonly record struct WorkerKey(string Silo, string Device, string Job, int Shard)
{
    public override string ToString() => $"{Silo}/{Device}/{Job}/{Shard}";

    public static WorkerKey Parse(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 4 || parts.Any(string.IsNullOrEmpty) || !int.TryParse(parts[3], out int shard))
            throw new ArgumentException($"worker key '{key}' is not 'silo/device/job/shard'.", nameof(key));
        return new WorkerKey(parts[0], parts[1], parts[2], shard);
    }
}
