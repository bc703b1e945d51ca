using Orleans.Serialization.Cloning;

namespace Orchestrator.Grains.Transport;

/// <summary>In-silo grain calls deep-copy their arguments; a payload is immutable by contract, so it passes as is.</summary>
[RegisterCopier]
public sealed class TensorPayloadCopier : IDeepCopier<TensorPayload>
{
    public TensorPayload? DeepCopy(TensorPayload? input, CopyContext context) => input;
}
