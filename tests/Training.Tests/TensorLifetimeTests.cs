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

    [Fact]
    public void A_streaming_parquet_source_frees_its_row_groups_and_a_refused_one_leaves_nothing()
    {
        using var scratch = new ScratchDirectory();
        var shape = new ModelShape { Groups = 3, Features = 5, Input = 4, Hidden = 6, Output = 2 };
        var path = scratch.NewFile(".parquet");
        var bad = scratch.NewFile(".parquet");
        using (var scope = NewDisposeScope())
        {
            var features = ParquetFiles.Rows<double>(randn(30, 5, ScalarType.Float64));
            var targets = ParquetFiles.Rows<double>(randn(30, 6, ScalarType.Float64));
            ParquetFiles.Write(path, 30, 4, ParquetFiles.List("features", features), ParquetFiles.List("targets", targets));
            targets[29] = targets[29][..5];   // the last row group's last list is short
            ParquetFiles.Write(bad, 30, 4, ParquetFiles.List("features", features), ParquetFiles.List("targets", targets));
        }
        var spec = new JobSpec { Shape = shape, BatchSize = 4, DType = ScalarType.Float64, Data = new DataSpec { Source = "parquet", Path = path } };
        LiveTensors.WithoutCollection(() =>
        {
            long before = LiveTensors.Count;
            using (var source = new ParquetSource(spec, wholeFileBytes: 0))
            {
                for (int i = 0; i < 20; i++) source.Get(i).Dispose();   // more row groups than the cache holds
                source.ReadRows(3, 20).Dispose();
            }
            Assert.Throws<InvalidDataException>(() => new ParquetSource(spec with { Data = spec.Data with { Path = bad } }, wholeFileBytes: 0));
            Assert.Throws<InvalidDataException>(() => new ParquetSource(spec with { Data = spec.Data with { Path = bad } }));
            Assert.Equal(before, LiveTensors.Count);
        });
    }
}
