using System.Globalization;
using Orchestrator.Training.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Inference;

/// <summary>
/// A checkpoint's model for inference: a frozen <see cref="Trunk"/> and a frozen <see cref="TowerShard"/> of all N
/// groups, so predictions run the very forward training runs (<see cref="Trunk.Infer"/>, <see cref="TowerShard.Infer"/>).
/// The weights are the checkpoint's masters (float32 for half-precision jobs) in <see cref="DType"/>: by default the
/// job's dtype, which rounds them as training's working copies do, so a bf16 job predicts what it was validated on;
/// another dtype (float32 for a bf16 job) uses the masters as they are. Frozen parts keep no masters, moments or
/// activations: the model holds one copy of the weights on <see cref="Device"/>.
/// </summary>
public sealed class TrainedModel : IDisposable
{
    public JobSpec Job { get; }
    /// <summary>Training steps the checkpoint had taken.</summary>
    public long Step { get; }
    public ScalarType DType { get; }
    public Device Device { get; }
    public Trunk Trunk { get; }
    public TowerShard Towers { get; }

    TrainedModel(JobSpec job, long step, ScalarType dtype, Device device, Trunk trunk, TowerShard towers)
    {
        (Job, Step, DType, Device, Trunk, Towers) = (job, step, dtype, device, trunk, towers);
    }

    /// <summary>
    /// Reads the checkpoint's trunk and towers (every file's length, SHA-256 and tensors checked, as
    /// <see cref="Checkpoint.Verify"/> checks them) onto <paramref name="device"/> in <paramref name="dtype"/> (null: the job's).
    /// The AdamW moments are read with the weights, to be checked, on the CPU, and dropped before this returns.
    /// </summary>
    public static TrainedModel Load(Checkpoint checkpoint, Device device, ScalarType? dtype = null)
    {
        var job = checkpoint.Manifest.Job;
        var chosen = dtype ?? job.DType;
        var groups = new GroupRange(0, job.Shape.Groups);
        using var scope = NewDisposeScope();
        using var trunkState = checkpoint.ReadTrunk();
        using var towerState = checkpoint.ReadTowers(groups);
        var trunk = new Trunk(job.Shape, job.Seed, chosen, device, optimizer: null);
        TowerShard? towers = null;
        try
        {
            towers = new TowerShard(job.Shape, groups, job.Seed, chosen, device, optimizer: null);
            using var noGrad = no_grad();
            trunk.Weight.copy_(Saved(trunkState, StateLayout.Trunk(ParameterNames.TrunkWeight, StateLayout.Weight)));
            trunk.Bias.copy_(Saved(trunkState, StateLayout.Trunk(ParameterNames.TrunkBias, StateLayout.Weight)));
            for (int g = 0; g < groups.Count; g++)
            {
                towers.WGateUp[g].copy_(Saved(towerState, StateLayout.Tower(g, StateLayout.GateUp, StateLayout.Weight)));   // (D_in, 2H)
                towers.WDown[g].copy_(Saved(towerState, StateLayout.Tower(g, StateLayout.Down, StateLayout.Weight)));       // (H, D_out)
            }
            return new TrainedModel(job, checkpoint.Manifest.Step, chosen, device, trunk, towers);
        }
        catch
        {
            trunk.Dispose();
            towers?.Dispose();
            throw;
        }
    }

    static Tensor Saved(ShardState state, string name) => state.Tensors.TryGetValue(name, out var t) ? t
        : throw new InvalidDataException($"the checkpoint's {state.Describe()} has no tensor '{name}'.");

    /// <summary>features (B, D_feat) on <see cref="Device"/> in <see cref="DType"/> -> the raw outputs (B, N, D_out) (logits for bce jobs).</summary>
    public Tensor Predict(Tensor features)
    {
        using var scope = NewDisposeScope();
        var x = Trunk.Infer(features);                    // (B, N, D_in)
        return Towers.Infer(x).MoveToOuterDisposeScope();  // (B, N, D_out)
    }

    /// <summary>
    /// features (S, D_feat) of any floating dtype, on the CPU (the trunk checks their width) -> the raw outputs (S, N, D_out) in
    /// <paramref name="outputDType"/> on the CPU, computed <paramref name="batchSize"/> rows at a time: only one batch's
    /// inputs and outputs are on the device at once.
    /// </summary>
    public Tensor PredictInBatches(Tensor features, int batchSize, ScalarType outputDType)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        long samples = features.shape[0];
        var predictions = empty([samples, Job.Shape.Groups, Job.Shape.Output], outputDType);   // (S, N, D_out)
        for (long start = 0; start < samples; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(batchSize, samples - start);
            var batch = features.narrow(0, start, count).to(DType, Device);   // (b, D_feat)
            predictions.narrow(0, start, count).copy_(Predict(batch));        // (b, N, D_out)
        }
        return predictions;
    }

    /// <summary>
    /// What files made from this model say about it: the job, its step, shape and loss, the dtype it trained in and the
    /// one it runs in here.
    /// </summary>
    public Dictionary<string, string> Metadata()
    {
        var shape = Job.Shape;
        string Number(long n) => n.ToString(CultureInfo.InvariantCulture);
        return new()
        {
            ["job"] = Job.Name,
            ["step"] = Number(Step),
            ["groups"] = Number(shape.Groups),
            ["features"] = Number(shape.Features),
            ["input"] = Number(shape.Input),
            ["hidden"] = Number(shape.Hidden),
            ["output"] = Number(shape.Output),
            ["loss"] = EnumNames.Of(Job.Loss.Kind),
            ["trained_dtype"] = Kernels.DTypeNames.Name(Job.DType),
            ["dtype"] = Kernels.DTypeNames.Name(DType),
        };
    }

    public void Dispose()
    {
        Trunk.Dispose();
        Towers.Dispose();
    }
}
