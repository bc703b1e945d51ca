using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Checkpoints;

/// <summary>
/// The training state of one part of the model as named CPU tensors (<see cref="StateLayout"/> names): the masters and
/// moments (float32 for half-precision jobs, the parameters of record) of the trunk
/// (<see cref="Groups"/> null) or the towers of a group range, with the AdamW step count. Exporting copies to the
/// CPU, so training may go on while another thread writes the state; restoring copies back. Owns its tensors.
/// </summary>
public sealed class ShardState : IDisposable
{
    public GroupRange? Groups { get; }
    public long OptimizerStep { get; }
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>Takes ownership of <paramref name="tensors"/>.</summary>
    public ShardState(GroupRange? groups, long optimizerStep, IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(optimizerStep);
        Groups = groups;
        OptimizerStep = optimizerStep;
        Tensors = tensors;
    }

    public string Describe() => Groups is { } groups ? $"towers {groups}" : "trunk";

    /// <summary>CPU copies of the shard's weights and moments, one tensor per group.</summary>
    public static ShardState Export(TowerShard shard)
    {
        var optimizer = Trained(shard.Optimizer, $"tower shard {shard.Groups}");
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        var weights = shard.Weights;
        for (int i = 0; i < weights.Count; i++)
            foreach (var slot in StateLayout.Slots)
            {
                var all = CpuCopy(Slot(weights[i], optimizer, i, slot));                           // (count, ...)
                for (int k = 0; k < shard.Groups.Count; k++)
                    tensors[StateLayout.Tower(shard.Groups.First + k, StateLayout.TowerMatrices[i], slot)] = all[k].DetachFromDisposeScope();
            }
        return new ShardState(shard.Groups, optimizer.StepCount, tensors);
    }

    /// <summary>CPU copies of the trunk's weights and moments.</summary>
    public static ShardState Export(Trunk trunk)
    {
        var optimizer = Trained(trunk.Optimizer, "the trunk");
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        var weights = trunk.Weights;
        for (int i = 0; i < weights.Count; i++)
            foreach (var slot in StateLayout.Slots)
                tensors[StateLayout.Trunk(StateLayout.TrunkParameters[i], slot)] = CpuCopy(Slot(weights[i], optimizer, i, slot)).DetachFromDisposeScope();
        return new ShardState(null, optimizer.StepCount, tensors);
    }

    /// <summary>Overwrites the shard's weights, moments and step count with this state, which must cover exactly its groups.</summary>
    public void RestoreInto(TowerShard shard)
    {
        if (Groups != shard.Groups) throw new ArgumentException($"this state holds {Describe()}, not towers {shard.Groups}.");
        var optimizer = Trained(shard.Optimizer, $"tower shard {shard.Groups}");
        using var scope = NewDisposeScope();
        Restore(shard.Weights, optimizer, (i, slot) =>
            stack(Enumerable.Range(shard.Groups.First, shard.Groups.Count)
                .Select(g => Get(StateLayout.Tower(g, StateLayout.TowerMatrices[i], slot))).ToArray()));   // (count, ...)
    }

    /// <summary>Overwrites the trunk's weights, moments and step count with this state.</summary>
    public void RestoreInto(Trunk trunk)
    {
        if (Groups is not null) throw new ArgumentException($"this state holds {Describe()}, not the trunk.");
        var optimizer = Trained(trunk.Optimizer, "the trunk");
        Restore(trunk.Weights, optimizer, (i, slot) => Get(StateLayout.Trunk(StateLayout.TrunkParameters[i], slot)));
    }

    /// <summary>
    /// weights[i]'s master and moments take the values saved(i, slot) and its working copy is refreshed; shapes and dtypes
    /// must already agree.
    /// </summary>
    void Restore(IReadOnlyList<MasterWeight> weights, AdamW optimizer, Func<int, string, Tensor> saved)
    {
        var values = weights.Select((w, i) => StateLayout.Slots.Select(slot => Checked(saved(i, slot), w.Master, i, slot)).ToArray()).ToArray();
        using var noGrad = no_grad();
        for (int i = 0; i < weights.Count; i++)
        {
            weights[i].Master.copy_(values[i][0]);
            weights[i].Refresh();
        }
        optimizer.LoadState(OptimizerStep, values.Select(v => v[1]).ToArray(), values.Select(v => v[2]).ToArray());
    }

    Tensor Checked(Tensor value, Tensor parameter, int index, string slot)
    {
        var dtype = parameter.dtype;
        if (value.dtype != dtype || !value.shape.SequenceEqual(parameter.shape))
            throw new ArgumentException($"{Describe()}: saved {slot} of parameter {index} is {value.dtype} ({string.Join(", ", value.shape)}) " +
                                        $"but the model keeps {dtype} ({string.Join(", ", parameter.shape)}).");
        return value;
    }

    Tensor Get(string name) => Tensors.TryGetValue(name, out var t) ? t
        : throw new ArgumentException($"{Describe()}: the state has no tensor '{name}'.");

    static AdamW Trained(AdamW? optimizer, string what) =>
        optimizer ?? throw new InvalidOperationException($"{what} is frozen: it has no training state.");

    static Tensor Slot(MasterWeight weight, AdamW optimizer, int index, string slot) => slot switch
    {
        StateLayout.Weight => weight.Master,
        StateLayout.ExpAvg => optimizer.ExpAvg[index],
        StateLayout.ExpAvgSq => optimizer.ExpAvgSq[index],
        _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, null),
    };

    /// <summary>A copy on the CPU that shares nothing with the live tensor (.cpu() alone aliases a CPU tensor).</summary>
    static Tensor CpuCopy(Tensor t) => t.detach().to(t.dtype, CPU, copy: true);

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
