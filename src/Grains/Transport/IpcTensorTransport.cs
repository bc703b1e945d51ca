using Orchestrator.Grains.Placement;
using Orchestrator.Kernels.Cuda;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Exchange between silo processes of one host, for tensors on GPUs (several silos sharing one GPU included). Pack
/// copies the tensor into a <see cref="SharedDeviceBuffer"/> of this link and sends its CUDA IPC handle and a sequence
/// number; Unpack maps the peer's buffer (once, then cached) and copies out of it, device to device (peer to peer when
/// the GPUs differ): no byte passes through host memory or a socket.
/// </summary>
/// <remarks>
/// One instance is one end of one coordinator-worker link, used only on its device executor. A buffer is reused only
/// after the receiver has marked its last transfer consumed, so a sender may run ahead of its receiver by up to
/// <see cref="MaxBuffers"/> transfers. Mappings must be closed before their owner frees them: the coordinator releases
/// its imports, then stops the worker (which releases its imports and frees its buffers), then frees its own buffers.
/// </remarks>
public sealed class IpcTensorTransport : ITensorTransport, IDisposable
{
    public const int MaxBuffers = 4;

    readonly List<(Guid Id, SharedDeviceBuffer Buffer)> exports = [];
    readonly Dictionary<Guid, MappedDeviceBuffer> imports = [];
    ulong sequence;

    public TensorPayloadKind Kind => TensorPayloadKind.Ipc;

    public TensorPayload Pack(Tensor tensor)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CUDA)
            throw new InvalidOperationException($"CUDA IPC carries GPU tensors; this one is on {tensor.device}. Use the channel or message transport.");
        long bytes = tensor.numel() * tensor.element_size();
        var (id, buffer) = FreeBuffer(CudaDevice.Of(tensor), bytes);
        buffer.Write(tensor, ++sequence);
        return TensorPayload.OfIpc(tensor.dtype, tensor.shape, id, buffer.Handle.ToArray(), sequence, SiloLocality.Process);
    }

    /// <summary>A buffer of this device that fits and whose last transfer was consumed, or a new one.</summary>
    (Guid, SharedDeviceBuffer) FreeBuffer(CudaDevice device, long bytes)
    {
        foreach (var export in exports)
            if (export.Buffer.Capacity >= bytes && export.Buffer.Device == device && export.Buffer.IsConsumed) return export;
        if (exports.Count == MaxBuffers)
            throw new InvalidOperationException(
                $"all {MaxBuffers} CUDA IPC buffers of this link still hold transfers their receiver has not copied; a receiver stopped unpacking.");
        var created = (Guid.NewGuid(), new SharedDeviceBuffer(device, bytes));
        exports.Add(created);
        return created;
    }

    public Tensor Unpack(TensorPayload payload, Device device)
    {
        if (payload.Kind != TensorPayloadKind.Ipc) throw new InvalidOperationException($"{payload} did not come through CUDA IPC.");
        if (payload.Origin == SiloLocality.Process)
            throw new InvalidOperationException($"{payload} comes from this very process, where CUDA IPC handles cannot be opened; use the process transport.");
        if (device.type != TorchSharp.DeviceType.CUDA)
            throw new InvalidOperationException($"{payload} can only be unpacked onto a GPU; asked for {device}.");
        var cuda = CudaDevice.For(device.index);
        if (!imports.TryGetValue(payload.Transfer, out var mapped))
            imports[payload.Transfer] = mapped = new MappedDeviceBuffer(cuda, IpcMemoryHandle.From(payload.IpcHandle));
        var tensor = empty(payload.Shape, payload.DType, device);
        mapped.ReadInto(tensor);
        mapped.MarkConsumed(payload.Sequence);
        return tensor;
    }

    /// <summary>Closes the mappings of the peer's buffers (before the peer frees them).</summary>
    public void ReleaseImports()
    {
        foreach (var mapped in imports.Values) mapped.Dispose();
        imports.Clear();
    }

    /// <summary>Closes the mappings and frees this end's buffers.</summary>
    public void Dispose()
    {
        ReleaseImports();
        foreach (var (_, buffer) in exports) buffer.Dispose();
        exports.Clear();
    }
}
