using Orleans.Placement;

namespace Orchestrator.Grains.Placement;

/// <summary>Marks a grain class whose string key is a <see cref="WorkerKey"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class DevicePlacementAttribute() : PlacementAttribute(new DevicePlacementStrategy());
