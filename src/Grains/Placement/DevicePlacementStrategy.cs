namespace Orchestrator.Grains.Placement;

/// <summary>Places a grain on the silo its <see cref="WorkerKey"/> names, after checking that silo has the device.</summary>
public sealed class DevicePlacementStrategy : PlacementStrategy;
