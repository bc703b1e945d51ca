using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Orchestrator.Grains.Transport.Channel;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Servers on loopback, fresh random tensors, bit-exact comparison and raw frames for the data channel tests.</summary>
static class DataChannelTestKit
{
    /// <summary>The longest any single wait in these tests may take; far above what a healthy run needs.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    public static readonly ScalarType[] DTypes =
        [ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64, ScalarType.Int32];

    public static DataChannelServer Server(DataChannelOptions? options = null) => new(new IPEndPoint(IPAddress.Loopback, 0), options);

    /// <summary>Random values of <paramref name="dtype"/> over the whole range of the integer types; never all zeros.</summary>
    public static Tensor Random(ScalarType dtype, params long[] shape) => dtype switch
    {
        ScalarType.Int64 => randint(-(1L << 62), 1L << 62, shape, dtype),
        ScalarType.Int32 => randint(int.MinValue, int.MaxValue, shape, dtype),
        _ => RandomFloat(dtype, shape),
    };

    static Tensor RandomFloat(ScalarType dtype, long[] shape)
    {
        using var values = randn(shape, ScalarType.Float64);
        return values.to(dtype);
    }

    /// <summary>Same dtype, same shape, same bytes (so NaN payloads and negative zeros count too).</summary>
    public static void AssertBitExact(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(DeviceType.CPU, actual.device_type);
        using var contiguous = expected.contiguous();
        Assert.True(contiguous.bytes.SequenceEqual(actual.bytes), $"received {actual.dtype} {string.Join("x", actual.shape)} differs from what was sent");
    }

    /// <summary>The bytes a client would put on the wire for <paramref name="tensor"/> sent whole.</summary>
    public static byte[] Frame(Guid transfer, Tensor tensor, int chunkBytes) => Frames(transfer, tensor, chunkBytes, parts: 1)[0];

    /// <summary>The frames of <paramref name="tensor"/> striped into <paramref name="parts"/> parts, in part order.</summary>
    public static byte[][] Frames(Guid transfer, Tensor tensor, int chunkBytes, int parts) =>
        [.. FrameHeader.For(transfer, tensor, chunkBytes).Split(parts).Select(header => Frame(header, tensor))];

    /// <summary>The frame of <paramref name="header"/>'s part of <paramref name="tensor"/>, whatever the header says.</summary>
    public static byte[] Frame(FrameHeader header, Tensor tensor)
    {
        using var wire = new MemoryStream();
        using var flat = FrameWriter.Flatten(tensor);
        FrameWriter.WriteAsync(wire, header, flat, stageCpuTensors: false, _ => { }, CancellationToken.None).GetAwaiter().GetResult();
        return wire.ToArray();
    }

    /// <summary>Just a header, with whatever fields a test wants, and a correct checksum.</summary>
    public static byte[] Header(FrameHeader header)
    {
        var bytes = new byte[header.EncodedBytes];
        header.Encode(bytes);
        return bytes;
    }

    /// <summary>Connects a plain socket, writes <paramref name="bytes"/> and closes the connection.</summary>
    public static async Task WriteRawAsync(IPEndPoint to, byte[] bytes)
    {
        using var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Patience);
        await socket.ConnectAsync(to, timeout.Token);
        await socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Sends <paramref name="sent"/> through <paramref name="client"/> and returns what <paramref name="server"/> received (the caller disposes it).</summary>
    public static async Task<Tensor> RoundTrip(DataChannelServer server, DataChannelClient client, Tensor sent)
    {
        var transfer = Guid.NewGuid();
        var receive = server.ReceiveAsync(transfer, Patience);
        await client.SendAsync(server.LocalEndPoint, transfer, sent);
        return await receive;
    }

    /// <summary>Where a CPU tensor's bytes are, to tell whether two tensors share a receive buffer.</summary>
    public static unsafe IntPtr Address(Tensor tensor) => (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));

    /// <summary>Runs <paramref name="action"/>, expecting <typeparamref name="T"/> within <paramref name="within"/>.</summary>
    public static async Task<T> ThrowsWithin<T>(TimeSpan within, Func<Task> action) where T : Exception
    {
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<T>(action);
        Assert.True(clock.Elapsed < within, $"{typeof(T).Name} took {clock.Elapsed.TotalMilliseconds:F0} ms, more than {within.TotalMilliseconds:F0} ms");
        return error;
    }
}
