using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>A batch with NaN/Inf inputs, or a non-finite loss, is rejected before any parameter changes.</summary>
[Collection(ClusterCollection.Name)]
public class BadBatchTests(ClusterFixture fixture)
{
    /// <summary>A data file exactly one batch long (every step sees every sample), damaged by <paramref name="damage"/>.</summary>
    static JobSpec JobOnFile(ScratchDirectory scratch, Action<Tensor, Tensor> damage)
    {
        var spec = DistributedTrainingTests.SmallJob(ScalarType.Float32, []);
        var check = new Check();
        using var features = check.Randn([spec.BatchSize, spec.Shape.Features], ScalarType.Float32);
        using var targets = check.Randn([spec.BatchSize, spec.Shape.Groups, spec.Shape.Output], ScalarType.Float32);
        damage(features, targets);
        var path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = features, [SafetensorsSource.TargetsName] = targets });
        return spec with { Data = spec.Data with { Source = "safetensors", Path = path } };
    }

    public static TheoryData<string, string> Damages => new()
    {
        { "nan-feature", "its features hold 1 NaN or infinite values" },
        { "inf-target", "its targets hold 2 NaN or infinite values" },
        { "overflowing-target", "its loss is ∞" },
    };

    [Theory, MemberData(nameof(Damages))]
    public async Task The_step_is_rejected_with_a_clear_error_and_the_model_is_unchanged(string damage, string expected)
    {
        using var scratch = new ScratchDirectory();
        var spec = JobOnFile(scratch, (features, targets) =>
        {
            switch (damage)
            {
                case "nan-feature": features[3, 1] = tensor(float.NaN); break;
                case "inf-target": targets[0, 1, 0] = tensor(float.PositiveInfinity); targets[5, 0, 1] = tensor(float.NegativeInfinity); break;
                default: targets[2, 2, 1] = tensor(3e38f); break;   // finite, but its squared error overflows float32
            }
        });
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            var before = await coordinator.GetParametersAsync();
            var e = await Assert.ThrowsAsync<BadBatchException>(() => coordinator.StepAsync());
            Assert.Contains("batch 0 is rejected", e.Message);
            Assert.Contains(expected, e.Message.Replace("Infinity", "∞"));
            var after = await coordinator.GetParametersAsync();
            var status = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Running, 0L), (status.State, status.StepsDone));

            var message = new MessageTensorTransport(long.MaxValue);
            using var scope = NewDisposeScope();
            foreach (var (name, payload) in before)
                Assert.True(Exactly.Same(message.Unpack(payload, CPU), message.Unpack(after[name], CPU)), name);
            // The workers dropped the rejected forward: the job can still step (into the same error here).
            await Assert.ThrowsAsync<BadBatchException>(() => coordinator.StepAsync());
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }
}
