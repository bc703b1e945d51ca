using Orchestrator.Grains.Placement;
using Orchestrator.Kernels.Cuda;
using Orchestrator.Kernels.Cuda.Ipc;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Transport;

/// <summary>
/// Exchange between silo processes of one host, for tensors on GPUs (several silos sharing one GPU included). Pack
/// queues a copy of the tensor into a <see cref="SharedDeviceBuffer"/> of this link and sends its CUDA IPC handles and a
/// sequence number; Unpack maps the peer's buffer (once, then cached) and queues a copy out of it, device to device
/// (peer to peer when the GPUs differ), behind a device-side wait for the sender's copy. No byte passes through host
/// memory or a socket, and neither side's host thread waits for the GPU.
/// </summary>
/// <remarks>
/// One instance is one end of one coordinator-worker link, used only on its device executor. A buffer is reused only
/// after the receiver has marked its last transfer consumed; while none is free a new one is made, up to
/// <see cref="MaxBuffers"/>, and then Pack waits (up to <see cref="FreeBufferTimeout"/>) for the receiver to catch up.
/// Mappings must be closed before their owner frees them: the coordinator releases its imports, then stops the worker
/// (which releases its imports and frees its buffers), then frees its own buffers.
/// </remarks>
public sealed class IpcTensorTransport : ITensorTransport, IDisposable
{
    public const int MaxBuffers = 8;
    static readonly TimeSpan FreeBufferTimeout = TimeSpan.FromMinutes(1);

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
        return TensorPayload.OfIpc(tensor.dtype, tensor.shape, id, buffer.Handles, sequence, SiloLocality.Process);
    }

    /// <summary>A buffer of this device that fits and whose last transfer was consumed, a new one, or the first to be consumed.</summary>
    (Guid, SharedDeviceBuffer) FreeBuffer(CudaDevice device, long bytes)
    {
        var deadline = DateTime.UtcNow + FreeBufferTimeout;
        var spin = new SpinWait();
        while (true)
        {
            foreach (var export in exports)
                if (export.Buffer.Capacity >= bytes && export.Buffer.Device == device && export.Buffer.IsConsumed) return export;
            if (exports.Count < MaxBuffers)
            {
                var created = (Guid.NewGuid(), new SharedDeviceBuffer(device, bytes));
                exports.Add(created);
                return created;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"all {MaxBuffers} CUDA IPC buffers of this link still hold transfers their receiver has not " +
                                           $"copied after {FreeBufferTimeout.TotalSeconds:F0} s (or none fits {bytes} bytes); the receiver stopped unpacking.");
            spin.SpinOnce(sleep1Threshold: -1);   // on the device executor; the receiver's stream is a copy away, not a millisecond
        }
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
            imports[payload.Transfer] = mapped = new MappedDeviceBuffer(cuda, payload.IpcHandle);
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
