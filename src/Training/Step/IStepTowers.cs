using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The N groups' towers as one training step drives them, wherever their shards live: one <see cref="TowerShard"/> in
/// process, worker grains on a silo. Tensors come back owned by the caller, on the trunk's device.
/// </summary>
public interface IStepTowers
{
    /// <summary>x (B, N, D_in) -> y (B, N, D_out); the activations are kept for <see cref="BackwardAsync"/>.</summary>
    Task<Tensor> ForwardAsync(Tensor x);

    /// <summary>dY (B, N, D_out) -> dX (B, N, D_in); the weight gradients wait for <see cref="AcceptAsync"/> or <see cref="DiscardAsync"/>.</summary>
    Task<Tensor> BackwardAsync(Tensor dY);

    /// <summary>The sum of squares of every waiting weight gradient, over all shards (the job's global gradient norm, squared, less the trunk's).</summary>
    Task<double> PendingSquaredNormAsync();

    /// <summary>The step is good: its waiting AdamW update is to be applied, the gradients scaled by <paramref name="gradientScale"/> (clipping).</summary>
    Task AcceptAsync(double gradientScale);

    /// <summary>The step is rejected: kept activations and the waiting update are dropped, no weight changes.</summary>
    Task DiscardAsync();

    /// <summary>x (B, N, D_in) -> y (B, N, D_out) with the weights as they are after the last accepted step; nothing is kept (evaluation).</summary>
    Task<Tensor> InferAsync(Tensor x);
}

/// <summary>All N groups in one shard on the trainer's own thread.</summary>
public sealed class LocalTowers(TowerShard shard) : IStepTowers
{
    public Task<Tensor> ForwardAsync(Tensor x) => Task.FromResult(shard.Forward(x));

    public Task<Tensor> BackwardAsync(Tensor dY) => Task.FromResult(shard.BackwardDeferred(dY));

    public Task<double> PendingSquaredNormAsync() => Task.FromResult(shard.PendingSquaredNorm());

    public Task AcceptAsync(double gradientScale)
    {
        shard.ApplyPending(gradientScale);
        return Task.CompletedTask;
    }

    public Task DiscardAsync()
    {
        shard.Discard();
        return Task.CompletedTask;
    }

    public Task<Tensor> InferAsync(Tensor x) => Task.FromResult(shard.Infer(x));
}
