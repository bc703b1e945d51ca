using System.Runtime.CompilerServices;

namespace Orchestrator.Kernels.Cuda;

/// <summary>CUipcMemHandle: 64 opaque bytes that let another process on this host map a device allocation.</summary>
public unsafe struct IpcMemoryHandle
{
    public const int Size = 64;
    fixed byte reserved[Size];

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        fixed (byte* p = reserved) new ReadOnlySpan<byte>(p, Size).CopyTo(bytes);
        return bytes;
    }

    public static IpcMemoryHandle From(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"a CUDA IPC memory handle is {Size} bytes; got {bytes.Length}.");
        var handle = new IpcMemoryHandle();
        bytes.CopyTo(new Span<byte>(handle.reserved, Size));
        return handle;
    }
}
