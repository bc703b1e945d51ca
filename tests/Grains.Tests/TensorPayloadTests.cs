using Orchestrator.Grains.Transport;
using Orchestrator.Kernels.Cuda.Ipc;
using Orchestrator.Training;
using TorchSharp;
using static TorchSharp.torch;
using static Orchestrator.TestKit.Exactly;

namespace Orchestrator.Grains.Tests;

[Collection(ClusterCollection.Name)]
public class TensorPayloadTests(ClusterFixture fixture)
{
    readonly MessageTensorTransport message = new(ClusterFixture.MaxMessageBytes - MessageTensorTransport.HeaderRoom);
    readonly Check check = new();

    IProbeGrain Probe(string silo, int n = 0) => fixture.Client.GetGrain<IProbeGrain>($"{silo}/cpu/probe/{n}");

    static readonly ScalarType[] AllDTypes =
    [
        ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16,
        ScalarType.Int64, ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    ];

    Tensor Random(long[] shape, ScalarType dtype)
    {
        if (Kernels.GroupedShapes.IsSupported(dtype)) return check.Randn(shape, dtype);
        bool flag = dtype == ScalarType.Bool;
        using var integers = randint(flag ? 0 : -100, flag ? 2 : 100, shape, ScalarType.Int64);
        return integers.to(dtype);
    }

    /// <summary>Packs on this thread, awaits the round trip, compares on this thread: no dispose scope spans the await.</summary>
    async Task<bool> RoundTrip(Tensor tensor, Func<TensorPayload, Task<TensorPayload>> send)
    {
        var back = await send(message.Pack(tensor));
        using var scope = NewDisposeScope();
        return Same(message.Unpack(back, CPU), tensor.contiguous());
    }

    /// <summary>Every dtype through Orleans messages; the data channel carries the dtypes its wire format knows.</summary>
    public static TheoryData<ScalarType, TransportChoice> DTypesAndTransports
    {
        get
        {
            var data = new TheoryData<ScalarType, TransportChoice>();
            foreach (var dtype in AllDTypes)
            {
                data.Add(dtype, TransportChoice.Message);
                data.Add(dtype, TransportChoice.Process);
                if (dtype is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int64 or ScalarType.Int32)
                    data.Add(dtype, TransportChoice.Channel);
            }
            return data;
        }
    }

    [Theory, MemberData(nameof(DTypesAndTransports))]
    public async Task Every_dtype_crosses_silos_bit_for_bit_with_views_and_empty_tensors(ScalarType dtype, TransportChoice transport)
    {
        Tensor[] tensors =
        [
            Random([64, 3, 5], dtype),
            Random([4, 6, 5], dtype).transpose(0, 1).narrow(2, 1, 3),   // non-contiguous view
            Random([0, 4], dtype),                                        // empty
        ];
        // Probes are no job: nothing announces their transfers unless the test does.
        using var announced = transport == TransportChoice.Channel ? fixture.ExpectChannelTransfers(ClusterFixture.MaxMessageBytes) : null;
        foreach (var tensor in tensors)
        {
            Assert.Equal(tensor.numel() * Kernels.DTypeNames.ElementSize(dtype), message.Pack(tensor).Data!.LongLength);   // bf16 stays 2 bytes
            // Primary relays to Secondary_1 through the transport; the echo comes back the same way.
            Assert.True(await RoundTrip(tensor, p => Probe("Primary").RelayAsync("Secondary_1/cpu/probe/0", p, forceLocal: false, choice: transport)),
                $"{dtype} ({string.Join(", ", tensor.shape)}) over {transport}");
            tensor.Dispose();
        }
    }

    [Fact]
    public async Task Auto_keeps_cpu_silos_on_orleans_messages()
    {
        using var tensor = check.Randn([256, 4, 512], ScalarType.Float32);   // 2 MiB: large, but a CPU worker
        Assert.True(await RoundTrip(tensor, p => Probe("Primary").RelayAsync("Secondary_2/cpu/probe/2", p, forceLocal: false, choice: TransportChoice.Auto)));
    }

    [Fact]
    public async Task Ipc_and_process_choices_are_refused_where_the_ends_cannot_use_them()
    {
        using var tensor = check.Randn([64, 4, 8], ScalarType.Float32);
        // These silos share a process and own CPUs only: CUDA IPC needs GPUs in two processes of one host.
        var ipc = await Assert.ThrowsAnyAsync<Exception>(() => RoundTrip(tensor, p => Probe("Primary").RelayAsync("Secondary_1/cpu/probe/3", p, forceLocal: false, choice: TransportChoice.Ipc)));
        Assert.Contains("'ipc' cannot reach worker device Secondary_1/cpu: CUDA IPC needs a GPU worker in another process", ipc.ToString());
    }

    [Fact]
    public void A_process_payload_nobody_took_is_released_by_its_sender()
    {
        var transport = new ProcessTensorTransport();
        using var tensor = check.Randn([6, 5], ScalarType.Float32);
        int before = ProcessTensorRegistry.Count;
        var payload = transport.Pack(tensor);
        Assert.Equal(ProcessTensorRegistry.Process, payload.Origin);
        payload.Dispose();   // as the coordinator does when the call carrying it failed
        Assert.Contains("no longer", Assert.Throws<InvalidOperationException>(() => transport.Unpack(payload, CPU)).Message);
        Assert.True(ProcessTensorRegistry.Count <= before);
    }

    [Fact]
    public void Payloads_from_another_process_are_not_taken_from_this_registry()
    {
        var foreign = TensorPayload.OfProcess(ScalarType.Float32, [2, 2], Guid.NewGuid(), "elsewhere/1/abc");
        Assert.Contains("cannot be unpacked in process", Assert.Throws<InvalidOperationException>(() => new ProcessTensorTransport().Unpack(foreign, CPU)).Message);
    }

    [Fact]
    public void Ipc_payloads_cross_the_wire_with_their_handle_and_sequence()
    {
        var handle = new byte[SharedDeviceBuffer.HandlesBytes];
        System.Random.Shared.NextBytes(handle);
        var buffer = Guid.NewGuid();
        var converter = new TensorPayloadConverter();
        var back = converter.ConvertFromSurrogate(converter.ConvertToSurrogate(TensorPayload.OfIpc(ScalarType.BFloat16, [3, 4, 5], buffer, handle, 17, "host/2/x")));
        Assert.Equal((TensorPayloadKind.Ipc, ScalarType.BFloat16, buffer, 17UL, "host/2/x"), (back.Kind, back.DType, back.Transfer, back.Sequence, back.Origin));
        Assert.Equal(new long[] { 3, 4, 5 }, back.Shape);
        Assert.Equal(handle, back.IpcHandle);
        var truncated = converter.ConvertToSurrogate(back);
        truncated.IpcHandle = handle[..10];
        Assert.Contains("has 10 handle bytes", Assert.Throws<InvalidDataException>(() => converter.ConvertFromSurrogate(truncated)).Message);
        truncated.IpcHandle = null;
        Assert.Contains("has no handle", Assert.Throws<InvalidDataException>(() => converter.ConvertFromSurrogate(truncated)).Message);
        // On a machine without a GPU, unpacking says so instead of touching the driver.
        Assert.Contains("only be unpacked onto a GPU", Assert.Throws<InvalidOperationException>(() => new IpcTensorTransport().Unpack(back, CPU)).Message);
    }

    [Fact]
    public async Task In_silo_payloads_pass_by_reference()
    {
        using var tensor = check.Randn([5, 2, 3], ScalarType.BFloat16);
        // The relay packs with the Local transport (same silo); a Local payload cannot be serialized, so the round
        // trip only works if Orleans hands the very same instance over.
        Assert.True(await RoundTrip(tensor, p => Probe("Secondary_2").RelayAsync("Secondary_2/cpu/probe/1", p, forceLocal: false)));
    }

    [Fact]
    public async Task Local_payloads_cannot_leave_their_silo()
    {
        using var tensor = check.Randn([3, 2], ScalarType.Float32);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => RoundTrip(tensor, p => Probe("Primary").RelayAsync("Secondary_2/cpu/probe/0", p, forceLocal: true)));
        Assert.Contains("cannot leave its silo", e.ToString());
    }

    [Fact]
    public void Payloads_over_the_message_limit_are_refused_naming_both_sizes()
    {
        using var scope = NewDisposeScope();
        var tensor = check.Randn([1024, 1025], ScalarType.Float32);    // 4,198,400 bytes
        var e = Assert.Throws<TensorPayloadTooLargeException>(() => message.Pack(tensor));
        Assert.Contains("4,198,400 bytes", e.Message);
        Assert.Contains($"{message.MaxPayloadBytes:N0}", e.Message);
    }

    [Fact]
    public void Payload_bytes_must_match_dtype_and_shape()
    {
        Assert.Contains("needs 24 bytes but carries 5", Assert.Throws<InvalidDataException>(() => TensorPayload.OfBytes(ScalarType.Float32, [2, 3], new byte[5])).Message);
        Assert.Throws<InvalidDataException>(() => TensorPayload.OfBytes(ScalarType.Float32, [-2, 3], new byte[24]));
    }

    [Fact]
    public async Task Device_placement_puts_grains_on_the_named_silo_and_checks_its_devices()
    {
        foreach (var silo in ClusterFixture.Silos)
            Assert.Equal(silo, await Probe(silo, 7).WhereAsync());
        var missingDevice = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.GetGrain<IProbeGrain>("Secondary_1/cuda:0/probe/0").WhereAsync());
        Assert.Contains("has devices [cpu], not cuda:0", missingDevice.ToString());
        var missingSilo = await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.GetGrain<IProbeGrain>("Nowhere/cpu/probe/0").WhereAsync());
        Assert.Contains("no active silo named 'Nowhere'", missingSilo.ToString());
    }
}
