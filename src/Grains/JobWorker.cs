using Orchestrator.Grains.Transport;
using Orchestrator.Training;

namespace Orchestrator.Grains;

/// <summary>One worker of a running job: its grain, what the status reports of it, its groups and how its tensors travel.</summary>
internal sealed record JobWorker(IWorkerGrain Grain, WorkerInfo Info, GroupRange Groups, ITensorTransport Transport);
