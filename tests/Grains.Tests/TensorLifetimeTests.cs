using Orchestrator.Training;
using Orchestrator.Training.Data;
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

    [Fact]
    public async Task Distributed_steps_with_validation_every_few_steps_leave_no_live_tensors_behind()
    {
        using var scratch = new ScratchDirectory();
        var check = new Check();
        var shape = DistributedTrainingTests.SmallJob(ScalarType.Float32, []).Shape;
        string data = scratch.NewFile();
        using (NewDisposeScope())
            SafeTensors.Write(data, new Dictionary<string, Tensor>
            {
                [SafetensorsSource.FeaturesName] = check.Randn([80, shape.Features], ScalarType.Float32),
                [SafetensorsSource.TargetsName] = check.Randn([80, shape.Groups, shape.Output], ScalarType.Float32).gt(0).to(ScalarType.Float32),
            });
        // BCE's per-group losses and AUCs, weighted groups and clipping: every part of an evaluation and of a step that allocates.
        var spec = DistributedTrainingTests.SmallJob(ScalarType.Float32, [], workersPerDevice: 2, steps: 60) with
        {
            Data = new DataSpec { Source = "safetensors", Path = data, DataSeed = check.Seed },
            Loss = new LossSpec { Kind = LossKind.Bce, GroupWeights = [1, 2, 0.5, 1, 1.5] },
            Optimizer = new OptimizerSpec { LearningRate = 0.01, ClipNorm = 1 },
            Validation = new ValidationSpec { Fraction = 0.25, EverySteps = 5 },
        };
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        long before = 0, afterFirstEvaluation = 0, afterLastEvaluation = 0, afterStop = 0;
        int evaluations = 0;
        await LiveTensors.WithoutCollectionAsync(async () =>
        {
            before = LiveTensors.Count;
            await coordinator.StartAsync(spec);
            for (int i = 0; i < spec.Steps; i++)
            {
                if ((await coordinator.StepAsync()).Eval is null) continue;
                if (++evaluations == 1) afterFirstEvaluation = LiveTensors.Count;
            }
            afterLastEvaluation = LiveTensors.Count;
            await coordinator.StopAsync();
            afterStop = LiveTensors.Count;
        });
        Assert.Equal(12, evaluations);                            // steps 5, 10, ..., 60
        Assert.Equal(afterFirstEvaluation, afterLastEvaluation);  // steps and evaluations keep nothing that outlives them
        Assert.Equal(before, afterStop);                          // stopping frees the held-out data with the rest
    }
}
