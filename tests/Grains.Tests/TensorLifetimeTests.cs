using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

[Collection(IsolatedClusterCollection.Name)]
public class TensorLifetimeTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Two_hundred_distributed_steps_leave_no_live_tensors_behind()
    {
        var spec = DistributedTrainingTests.SmallJob(ScalarType.Float32, [], workersPerDevice: 2, steps: 200);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        long before = 0, afterFirstStep = 0, afterLastStep = 0, afterStop = 0;
        await LiveTensors.WithoutCollectionAsync(async () =>
        {
            before = LiveTensors.Count;
            await coordinator.StartAsync(spec);
            await coordinator.StepAsync();
            afterFirstStep = LiveTensors.Count;
            for (int i = 1; i < spec.Steps; i++) await coordinator.StepAsync();
            afterLastStep = LiveTensors.Count;
            await coordinator.StopAsync();
            afterStop = LiveTensors.Count;
        });
        Assert.Equal(afterFirstStep, afterLastStep);   // steps keep nothing that outlives them
        Assert.Equal(before, afterStop);               // stopping frees trunk, shards, optimizer state and data
    }
}
