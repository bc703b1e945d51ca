using System.Collections.Concurrent;
using Orchestrator.Grains.Placement;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Tensors handed between silos that share this process (the local multi-silo cluster): the sender registers a
/// handle, the grain message carries only the entry id, the receiver takes the handle back. Nothing is copied unless
/// the receiver wants the tensor on another device.
/// </summary>
public static class ProcessTensorRegistry
{
    static readonly ConcurrentDictionary<Guid, Tensor> Entries = new();

    /// <summary>This process, as <see cref="TensorPayload.Origin"/> names it.</summary>
    public static string Process => SiloLocality.Process;

    /// <summary>Entries nobody took yet (a test checks that failed calls leave none behind).</summary>
    public static int Count => Entries.Count;

    /// <summary>Registers a handle the registry owns from now on; returns its entry.</summary>
    public static Guid Register(Tensor tensor)
    {
        var entry = Guid.NewGuid();
        Entries[entry] = tensor;
        return entry;
    }

    /// <summary>The registered handle, which the caller owns from now on; each entry is taken once.</summary>
    public static Tensor Take(Guid entry) =>
        Entries.TryRemove(entry, out var tensor) ? tensor
            : throw new InvalidOperationException($"tensor {entry} is not (or no longer) registered in this process; was it taken already?");

    /// <summary>Disposes an entry nobody took (its call failed); nothing when it was taken.</summary>
    public static void Drop(Guid entry)
    {
        if (Entries.TryRemove(entry, out var tensor)) tensor.Dispose();
    }
}
