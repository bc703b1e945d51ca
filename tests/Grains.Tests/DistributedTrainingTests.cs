using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

[Collection(ClusterCollection.Name)]
public class DistributedTrainingTests(ClusterFixture fixture)
{
    public static JobSpec SmallJob(ScalarType dtype, IReadOnlyList<string> devices, int workersPerDevice = 1, int steps = 4, TransportChoice transport = TransportChoice.Auto)
    {
        int seed = Random.Shared.Next();
        return new JobSpec
        {
            Name = $"job-{Guid.NewGuid():N}",
            Shape = new ModelShape { Groups = 5, Features = 6, Input = 4, Hidden = 8, Output = 3 },
            BatchSize = 16,
            DType = dtype,
            Steps = steps,
            Seed = seed,
            Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
            Devices = devices,
            WorkersPerDevice = workersPerDevice,
            Transport = transport,
        };
    }

    public static TheoryData<ScalarType, string[], int, int, TransportChoice> Layouts => new()
    {
        { ScalarType.Float64, ["Primary/cpu"], 1, 1, TransportChoice.Auto },
        { ScalarType.Float64, ["Primary/cpu", "Secondary_1/cpu"], 1, 2, TransportChoice.Auto },
        { ScalarType.Float64, [], 1, 3, TransportChoice.Auto },
        { ScalarType.Float64, [], 1, 3, TransportChoice.Channel },     // the two remote workers over the TCP data channel
        { ScalarType.Float64, ["cpu"], 3, 5, TransportChoice.Message },  // 9 slots for 5 groups: 4 workers are not created
        { ScalarType.Float32, [], 1, 3, TransportChoice.Channel },
        { ScalarType.Float32, ["Secondary_2/cpu"], 2, 2, TransportChoice.Auto },
        { ScalarType.Float64, [], 1, 3, TransportChoice.Process },     // the remote workers get registry entries of this process
        { ScalarType.BFloat16, [], 2, 5, TransportChoice.Process },
    };

    static TensorPayloadKind ExpectedKind(TransportChoice transport) => transport switch
    {
        TransportChoice.Channel => TensorPayloadKind.Channel,
        TransportChoice.Process => TensorPayloadKind.Process,
        _ => TensorPayloadKind.Message,
    };

    [Theory, MemberData(nameof(Layouts))]
    public async Task Training_on_the_cluster_matches_the_single_process_trainer(ScalarType dtype, string[] devices, int perDevice, int workers, TransportChoice transport)
    {
        var spec = SmallJob(dtype, devices, perDevice, transport: transport);
        double tolerance = dtype switch { ScalarType.Float64 => 1e-9, ScalarType.Float32 => 1e-4, _ => 1e-2 };
        using var reference = new InProcessTrainer(spec);
        // Until the workers and the coordinator announce their own transfers (DataChannelServer.Expect), the test does.
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        try
        {
            Assert.Equal(workers, status.Workers.Length);
            Assert.All(status.Workers.Where(w => w.Silo != status.CoordinatorSilo),
                w => Assert.Equal(ExpectedKind(transport), w.Transport));
            Assert.Equal(Enumerable.Range(0, spec.Shape.Groups), status.Workers.SelectMany(w => Enumerable.Range(w.FirstGroup, w.GroupCount)));
            for (int step = 0; step < spec.Steps; step++)
            {
                var metrics = await coordinator.StepAsync();
                double expected = reference.Step().Loss;
                Assert.Equal(step, metrics.Step);
                ExpectTraffic(spec, status, metrics);
                Assert.True(Math.Abs(metrics.Loss - expected) <= tolerance * expected, $"step {step}: loss {metrics.Loss} vs {expected}");
            }
            await ExpectParameters(coordinator, reference, tolerance);
            var final = await coordinator.GetStatusAsync();
            Assert.Equal(JobState.Finished, final.State);
            Assert.Equal(spec.Steps, final.StepsDone);
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    /// <summary>Each step moves x, y, dY and dX slices of every worker, counted under the worker's transport.</summary>
    static void ExpectTraffic(JobSpec spec, JobStatus status, StepMetrics metrics)
    {
        long element = Kernels.DTypeNames.ElementSize(spec.DType);
        var expected = status.Workers.GroupBy(w => EnumNames.Of(w.Transport)).ToDictionary(g => g.Key,
            g => g.Sum(w => 2L * spec.BatchSize * w.GroupCount * (spec.Shape.Input + spec.Shape.Output) * element));
        Assert.Equal(expected.OrderBy(kv => kv.Key), metrics.BytesMoved!.OrderBy(kv => kv.Key));
        Assert.True(metrics.ScatterMs > 0 && metrics.GatherMs > 0 && metrics.ScatterMs + metrics.GatherMs < metrics.TotalMs);
    }

    static async Task ExpectParameters(ICoordinatorGrain coordinator, InProcessTrainer reference, double tolerance)
    {
        var actual = await coordinator.GetParametersAsync();
        var message = new MessageTensorTransport(long.MaxValue);
        using var scope = NewDisposeScope();
        var expected = reference.Parameters();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, payload) in actual)
            new Check().Close(message.Unpack(payload, CPU), expected[name], tolerance, name);
        foreach (var t in expected.Values) t.Dispose();
    }

    [Fact]
    public async Task Status_reports_the_job_and_the_cluster_lists_devices_and_jobs()
    {
        var spec = SmallJob(ScalarType.Float32, []);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            var metrics = await coordinator.StepAsync();
            var status = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Running, 1L, metrics.Loss), (status.State, status.StepsDone, status.LastLoss!.Value));
            Assert.Contains(status.Workers, w => w.Transport == TensorPayloadKind.Local && w.Silo == status.CoordinatorSilo);
            Assert.Contains(status.Workers, w => w.Transport == TensorPayloadKind.Message && w.Silo != status.CoordinatorSilo);
            Assert.True(metrics.SamplesPerSecond > 0 && metrics.TowerForwardMs > 0 && metrics.TotalMs >= metrics.TowerBackwardMs);

            var cluster = fixture.Client.GetGrain<IClusterGrain>(IClusterGrain.Key);
            Assert.Equal(ClusterFixture.Silos.Select(s => $"{s}/cpu"), (await cluster.GetDevicesAsync()).Select(d => d.ToString()));
            Assert.Contains(spec.Name, await cluster.GetJobsAsync());
        }
        finally
        {
            await coordinator.StopAsync();
        }
        Assert.Empty((await coordinator.GetStatusAsync()).Workers);   // stopped and deactivated: a fresh coordinator answers
        Assert.DoesNotContain(spec.Name, await fixture.Client.GetGrain<IClusterGrain>(IClusterGrain.Key).GetJobsAsync());
    }
}
