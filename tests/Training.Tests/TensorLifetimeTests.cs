using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Counts live tensors process-wide, so it runs alone, after every parallel test.</summary>
[CollectionDefinition(nameof(TensorLifetimeTests), DisableParallelization = true)]
public sealed class TensorLifetimeCollection;

[Collection(nameof(TensorLifetimeTests))]
public class TensorLifetimeTests
{
    [Fact]
    public void Two_hundred_steps_leave_no_live_tensors_behind()
    {
        var spec = new JobSpec { Shape = new ModelShape { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 }, BatchSize = 8 };
        LiveTensors.WithoutCollection(() =>
        {
            long before = LiveTensors.Count;
            using (var trainer = new InProcessTrainer(spec))
            {
                trainer.Step();
                long afterFirstStep = LiveTensors.Count;
                for (int i = 1; i < 200; i++) trainer.Step();
                Assert.Equal(afterFirstStep, LiveTensors.Count);   // steady state: steps keep nothing that outlives them
            }
            Assert.Equal(before, LiveTensors.Count);
        });
    }

    [Fact]
    public void A_prefetching_source_frees_the_batch_nobody_asked_for()
    {
        using var scratch = new ScratchDirectory();
        var spec = new JobSpec
        {
            Shape = new ModelShape { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 },
            BatchSize = 4,
            Data = new DataSpec { Source = "safetensors", Path = scratch.NewFile() },
        };
        using (var scope = NewDisposeScope())
            SafeTensors.Write(spec.Data.Path!, new Dictionary<string, Tensor>
            {
                [SafetensorsSource.FeaturesName] = randn(10, 5),
                [SafetensorsSource.TargetsName] = randn(10, 3, 2),
            });
        LiveTensors.WithoutCollection(() =>
        {
            long before = LiveTensors.Count;
            using (var source = new PrefetchingBatchSource(BatchSources.Create(spec), CPU))
                for (int i = 0; i < 5; i++) source.Get(i).Dispose();   // batch 5 is being prepared when it is disposed
            Assert.Equal(before, LiveTensors.Count);
        });
    }
}
