using Orchestrator.Grains.Placement;
using Orchestrator.Grains.Transport;

namespace Orchestrator.Grains.Diagnostics;

[DevicePlacement]
public sealed class TransportProbeGrain : Grain, ITransportProbeGrain
{
    public Task<TensorPayload> EchoAsync(TensorPayload payload) => Task.FromResult(payload);
}
