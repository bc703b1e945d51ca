using Orchestrator.Grains.Transport;

namespace Orchestrator.Grains.Diagnostics;

/// <summary>
/// Returns what it receives, pinned to a silo like a worker ("{silo}/{device}/transport-probe/{n}"): with an Inline
/// payload, a call carries its bytes through Orleans messages both ways. Used by the transport benchmark.
/// </summary>
public interface ITransportProbeGrain : IGrainWithStringKey
{
    Task<TensorPayload> EchoAsync(TensorPayload payload);
}
