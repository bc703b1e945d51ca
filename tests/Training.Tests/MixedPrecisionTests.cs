using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Half-precision jobs learn like float32 ones: float32 masters keep the updates that half precision would round away.</summary>
public class MixedPrecisionTests(ITestOutputHelper output)
{
    const int Steps = 600, Tail = 50;

    /// <summary>The mean loss of the last <see cref="Tail"/> of <see cref="Steps"/> steps of the default job at lr 1e-4, and of the first.</summary>
    static (double First, double Last) Train(ScalarType dtype)
    {
        var spec = new JobSpec { DType = dtype, Steps = Steps, Optimizer = new OptimizerSpec { LearningRate = 1e-4 } };
        using var trainer = new InProcessTrainer(spec);
        var losses = Enumerable.Range(0, Steps).Select(_ => trainer.Step().Loss).ToArray();
        return (losses.Take(Tail).Average(), losses.TakeLast(Tail).Average());
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void A_half_precision_job_at_an_ordinary_learning_rate_tracks_the_float32_job(ScalarType dtype)
    {
        var (singleFirst, single) = Train(ScalarType.Float32);
        var (mixedFirst, mixed) = Train(dtype);
        output.WriteLine($"float32 {singleFirst:F5} -> {single:F5}; {dtype} {mixedFirst:F5} -> {mixed:F5}");
        Assert.True(single < 0.8 * singleFirst, $"the float32 job must learn for the comparison to mean anything: {singleFirst} -> {single}");
        Assert.True(Math.Abs(mixed - single) < 0.01 * single,
            $"{dtype} ended at {mixed:F5}, float32 at {single:F5} (mean of the last {Tail} of {Steps} steps); they must agree within 1% (measured: 0.1%)");
    }
}
