using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>One worker of a running job: its grain, where the plan put it, and how its tensors travel.</summary>
internal sealed record JobWorker(IWorkerGrain Grain, PlannedWorker Plan, ITensorTransport Transport)
{
    public GroupRange Groups => Plan.Groups;

    public string Silo => Plan.Key.Silo;

    /// <summary>What the job's status reports of it.</summary>
    public WorkerInfo Info => new(Plan.Key.ToString(), Plan.Key.Silo, Plan.Key.Device, Groups.First, Groups.Count, Transport.Kind);
}
