using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// Names and shapes of the training state in checkpoints. Tower tensors are named per group, not per shard, so a
/// checkpoint written by K workers restores into any other number of workers:
///   groups.{g}.gate_up.{weight|exp_avg|exp_avg_sq}   (D_in, 2H)
///   groups.{g}.down.{weight|exp_avg|exp_avg_sq}      (H, D_out)
///   trunk.weight, trunk.weight.exp_avg, trunk.weight.exp_avg_sq   (D_feat, N*D_in)
///   trunk.bias, trunk.bias.exp_avg, trunk.bias.exp_avg_sq         (N*D_in)
/// exp_avg and exp_avg_sq are AdamW's first and second moments (torch.optim.AdamW's state names).
/// </summary>
public static class StateLayout
{
    public const string Weight = "weight";
    public const string ExpAvg = "exp_avg";
    public const string ExpAvgSq = "exp_avg_sq";
    public const string GateUp = "gate_up";
    public const string Down = "down";

    /// <summary>A parameter's value and its two AdamW moments.</summary>
    public static readonly IReadOnlyList<string> Slots = [Weight, ExpAvg, ExpAvgSq];

    /// <summary>The tower matrices in the order of <see cref="TowerShard"/>'s AdamW parameters.</summary>
    public static readonly IReadOnlyList<string> TowerMatrices = [GateUp, Down];

    /// <summary>The trunk parameters in the order of <see cref="Trunk"/>'s AdamW parameters.</summary>
    public static readonly IReadOnlyList<string> TrunkParameters = [ParameterNames.TrunkWeight, ParameterNames.TrunkBias];

    public static string Tower(int group, string matrix, string slot) => $"groups.{group}.{matrix}.{slot}";

    public static string Trunk(string parameter, string slot) => slot == Weight ? parameter : $"{parameter}.{slot}";

    /// <summary>
    /// Every slot is saved in the masters' dtype (float32 for half-precision jobs): PyTorch users load float32 weights.
    /// Checkpoints written before master weights hold half-precision weights; <see cref="UpcastLegacyWeights"/> reads them.
    /// </summary>
    public static ScalarType SlotDType(ScalarType jobDType) => MasterWeight.MasterDType(jobDType);

    /// <summary>
    /// Replaces, in <paramref name="tensors"/>, each weight (not moment) that a checkpoint written before float32 masters
    /// saved in the job's half-precision dtype by its float32 upcast, so it restores as the master (exactly: every half
    /// value is a float32). Other tensors stay for <see cref="Mismatch"/> to judge.
    /// </summary>
    public static void UpcastLegacyWeights(Dictionary<string, Tensor> tensors, ScalarType jobDType)
    {
        var master = MasterWeight.MasterDType(jobDType);
        if (master == jobDType) return;
        foreach (var (name, tensor) in tensors.ToArray())
            if (tensor.dtype == jobDType && !name.EndsWith("." + ExpAvg, StringComparison.Ordinal) && !name.EndsWith("." + ExpAvgSq, StringComparison.Ordinal))
            {
                tensors[name] = tensor.to(master).DetachFromDisposeScope();
                tensor.Dispose();
            }
    }

    /// <summary>Every tensor the towers of <paramref name="groups"/> save, with its shape and dtype.</summary>
    public static IEnumerable<(string Name, long[] Shape, ScalarType DType)> TowerTensors(ModelShape shape, GroupRange groups, ScalarType dtype)
    {
        long[] gateUp = [shape.Input, 2L * shape.Hidden], down = [shape.Hidden, shape.Output];
        for (int g = groups.First; g < groups.End; g++)
            foreach (var slot in Slots)
            {
                yield return (Tower(g, GateUp, slot), gateUp, SlotDType(dtype));
                yield return (Tower(g, Down, slot), down, SlotDType(dtype));
            }
    }

    /// <summary>
    /// The "__metadata__" of a checkpoint file: what it belongs to, so a file copied into the wrong checkpoint is
    /// noticed. "format": "pt" is what PyTorch's save_file writes.
    /// </summary>
    public static Dictionary<string, string> Metadata(string job, long step, long optimizerStep, GroupRange? groups) => new()
    {
        ["format"] = "pt",
        ["job"] = job,
        ["step"] = step.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["optimizer_step"] = optimizerStep.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["groups"] = groups is { } range ? $"{range.First}-{range.End}" : "trunk",
    };

    /// <summary>The first way <paramref name="tensors"/> differs from the expected names, shapes and dtypes; null if it does not.</summary>
    public static string? Mismatch(IReadOnlyDictionary<string, Tensor> tensors, IEnumerable<(string Name, long[] Shape, ScalarType DType)> expected)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape, dtype) in expected)
        {
            names.Add(name);
            if (!tensors.TryGetValue(name, out var t)) return $"tensor '{name}' is missing.";
            if (t.dtype != dtype || !t.shape.SequenceEqual(shape))
                return $"tensor '{name}' is {t.dtype} ({string.Join(", ", t.shape)}) but the job needs {dtype} ({string.Join(", ", shape)}).";
        }
        var stranger = tensors.Keys.FirstOrDefault(n => !names.Contains(n));
        return stranger is null ? null : $"tensor '{stranger}' does not belong here.";
    }

    /// <summary>Every tensor the trunk saves, with its shape and dtype.</summary>
    public static IEnumerable<(string Name, long[] Shape, ScalarType DType)> TrunkTensors(ModelShape shape, ScalarType dtype)
    {
        long width = (long)shape.Groups * shape.Input;
        foreach (var slot in Slots)
        {
            yield return (Trunk(ParameterNames.TrunkWeight, slot), [shape.Features, width], SlotDType(dtype));
            yield return (Trunk(ParameterNames.TrunkBias, slot), [width], SlotDType(dtype));
        }
    }
}
