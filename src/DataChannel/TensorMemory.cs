using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Orchestrator.DataChannel;

/// <summary>
/// A <see cref="Memory{T}"/> over the bytes of a contiguous CPU tensor, so that socket reads and writes can go
/// straight to and from the tensor's storage across awaits (a <c>Span</c>, which is all <c>Tensor.bytes</c>
/// gives, cannot cross an await). The tensor must outlive every use of <see cref="MemoryManager{T}.Memory"/>.
/// </summary>
internal sealed unsafe class TensorMemory : MemoryManager<byte>
{
    readonly byte* pointer;
    readonly int length;

    TensorMemory(byte* pointer, int length)
    {
        this.pointer = pointer;
        this.length = length;
    }

    /// <summary>The memory of <paramref name="tensor"/>: contiguous, on the CPU and under 2 GiB (one chunk).</summary>
    public static TensorMemory Of(torch.Tensor tensor)
    {
        var bytes = tensor.bytes;
        return new TensorMemory((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(bytes)), bytes.Length);
    }

    public override Span<byte> GetSpan() => new(pointer, length);

    // Native memory never moves: pinning has nothing to do.
    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
