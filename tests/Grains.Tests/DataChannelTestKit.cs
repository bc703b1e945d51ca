using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Orchestrator.DataChannel;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// Servers on loopback, fresh random tensors, bit-exact comparison, and raw frames sent with or without the handshake
/// for the data channel tests.
/// </summary>
static class DataChannelTestKit
{
    /// <summary>The longest any single wait in these tests may take; far above what a healthy run needs.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>The cluster secret of this test run's servers and clients.</summary>
    public static readonly byte[] Secret = RandomNumberGenerator.GetBytes(32);

    /// <summary>The default options with <see cref="Secret"/>; tests change them with <c>with</c>.</summary>
    public static readonly DataChannelOptions Options = DataChannelOptions.Default with { Secret = Secret };

    public static readonly ScalarType[] DTypes =
        [ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64, ScalarType.Int32];

    /// <summary>
    /// A server on a free loopback port that expects any transfer its options allow, as the silo of a running job
    /// would: the announcement lives as long as the server.
    /// </summary>
    public static DataChannelServer Server(DataChannelOptions? options = null, ILogger<DataChannelServer>? logger = null) =>
        Server(new IPEndPoint(IPAddress.Loopback, 0), options, logger);

    public static DataChannelServer Server(IPEndPoint at, DataChannelOptions? options = null, ILogger<DataChannelServer>? logger = null)
    {
        options ??= Options;
        var server = new DataChannelServer(at, options, logger);
        // Never withdrawn: it goes with the server.
        _ = server.Expect(options.MaxPayloadBytes);
        return server;
    }

    /// <summary>A server on a free loopback port that nothing was announced to: no job on its silo expects data.</summary>
    public static DataChannelServer Unannounced(DataChannelOptions? options = null, ILogger<DataChannelServer>? logger = null) =>
        new(new IPEndPoint(IPAddress.Loopback, 0), options ?? Options, logger);

    public static DataChannelClient Client(DataChannelOptions? options = null) => new(options ?? Options);

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

    /// <summary>Connects a plain socket, does the handshake with <see cref="Secret"/>, writes <paramref name="bytes"/> and closes the connection.</summary>
    public static async Task WriteRawAsync(IPEndPoint to, byte[] bytes)
    {
        using var socket = await ConnectAsync(to);
        using var timeout = new CancellationTokenSource(Patience);
        using (var stream = new NetworkStream(socket, ownsSocket: false))
            await ChannelHandshake.ConnectAsync(stream, Secret, to.ToString(), timeout.Token);
        await socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Connects a plain socket; the caller does (or skips) the handshake.</summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint to)
    {
        var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Patience);
        try
        {
            await socket.ConnectAsync(to, timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Accepts <paramref name="count"/> connections on <paramref name="listener"/> and does the server's handshake on
    /// each, as a server that then reads (or does not read) what the test wants. The caller disposes the streams.
    /// </summary>
    public static async Task<NetworkStream[]> AcceptAsync(Socket listener, int count)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var accepted = new List<NetworkStream>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var stream = new NetworkStream(await listener.AcceptAsync(timeout.Token), ownsSocket: true);
                accepted.Add(stream);
                Assert.Null(await ChannelHandshake.AcceptAsync(stream, Secret, timeout.Token));
            }
            return [.. accepted];
        }
        catch
        {
            foreach (var stream in accepted) stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads until the server closes the connection (returns) or <see cref="Patience"/> runs out (throws).</summary>
    public static async Task ReadUntilClosedAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var buffer = new byte[1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0) { }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // Closed with bytes of ours unread: a reset is a close too.
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds; fails after <see cref="Patience"/> saying what it waited for.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Patience, $"still waiting after {Patience} for {what}");
            await Task.Delay(20);
        }
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
