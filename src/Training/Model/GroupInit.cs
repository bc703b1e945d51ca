using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// Deterministic initial weights. Each tensor of each group gets its own CPU generator, seeded by a stable hash of
/// (seed, group, tensor name), and is drawn in float64 before the cast: a group's weights are the same whichever
/// worker creates them and whichever groups sit next to it, so sharding never changes a value.
/// </summary>
public static class GroupInit
{
    /// <summary>Group index of tensors that belong to no group (the trunk).</summary>
    public const long Shared = -1;

    /// <summary>FNV-1a over the little-endian seed, group and UTF-8 name: stable across processes and .NET versions.</summary>
    public static ulong StableSeed(long seed, long group, string name)
    {
        ulong hash = 14695981039346656037UL;
        void Mix(ReadOnlySpan<byte> bytes)
        {
            foreach (byte b in bytes) hash = (hash ^ b) * 1099511628211UL;
        }
        Mix(BitConverter.GetBytes(seed));
        Mix(BitConverter.GetBytes(group));
        Mix(Encoding.UTF8.GetBytes(name));
        return hash;
    }

    /// <summary>Normal(0, std²) values of the given shape, as dtype on device.</summary>
    public static Tensor Normal(long seed, long group, string name, long[] shape, double std, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(StableSeed(seed, group, name));
        var values = randn(shape, ScalarType.Float64, generator: generator).mul_(std);
        return values.to(dtype, device).MoveToOuterDisposeScope();
    }

    /// <summary>One tensor per group in [first, first + count), stacked: (count, ...shape).</summary>
    public static Tensor Stacked(long seed, GroupRange groups, string name, long[] shape, double std, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var perGroup = Enumerable.Range(groups.First, groups.Count)
            .Select(g => Normal(seed, g, name, shape, std, ScalarType.Float64, CPU))
            .ToArray();
        var stacked = perGroup.Length == 0 ? zeros([0, .. shape], ScalarType.Float64) : stack(perGroup);
        return stacked.to(dtype, device).MoveToOuterDisposeScope();
    }
}
