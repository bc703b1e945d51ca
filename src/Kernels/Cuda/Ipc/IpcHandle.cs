namespace Orchestrator.Kernels.Cuda.Ipc;

/// <summary>
/// CUipcMemHandle or CUipcEventHandle: 64 opaque bytes that let another process on this host map a device allocation
/// or wait for an event.
/// </summary>
public unsafe struct IpcHandle
{
    /// <summary>Bytes in a handle, as CUDA defines it.</summary>
    public const int Size = 64;
    fixed byte reserved[Size];

    /// <summary>The handle's bytes, to send to the other process.</summary>
    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        fixed (byte* p = reserved) new ReadOnlySpan<byte>(p, Size).CopyTo(bytes);
        return bytes;
    }

    /// <summary>A handle from the bytes another process sent (<see cref="Size"/> of them).</summary>
    public static IpcHandle From(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"a CUDA IPC handle is {Size} bytes; got {bytes.Length}.");
        var handle = new IpcHandle();
        bytes.CopyTo(new Span<byte>(handle.reserved, Size));
        return handle;
    }
}
