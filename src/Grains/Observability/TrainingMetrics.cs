using System.Diagnostics.Metrics;
using Orchestrator.Kernels;
using Orchestrator.Training;

namespace Orchestrator.Grains.Observability;

/// <summary>
/// Per-step training metrics on the System.Diagnostics.Metrics meter "Orchestrator" (read them with dotnet-counters,
/// OpenTelemetry or a MeterListener). Every measurement is tagged with the job; phase times also with the phase.
/// Call <see cref="Record"/> once per step wherever <see cref="StepMetrics"/> are produced. Today the `orchestrator
/// train` client does (TrainCommand). The coordinator's silo can record them too with one line in
/// CoordinatorGrain.StepAsync, after its "Job {Job} step {Step}" debug log:
/// <code>TrainingMetrics.Record(Name, metrics, TrainingMetrics.ExchangedBytes(spec!, Status()));</code>
/// (then drop the client's call, or an embedded silo's process counts each step twice).
/// </summary>
public static class TrainingMetrics
{
    public const string MeterName = "Orchestrator";

    /// <summary>The phases of a step, as tagged on <c>orchestrator.step.phase.duration</c>.</summary>
    public static readonly string[] Phases = ["trunk_forward", "tower_forward", "loss", "tower_backward", "trunk_backward"];

    static readonly Meter Meter = new(MeterName);
    static readonly Counter<long> Steps = Meter.CreateCounter<long>("orchestrator.steps", "{step}", "Training steps completed.");
    static readonly Counter<long> Samples = Meter.CreateCounter<long>("orchestrator.samples", "{sample}", "Samples trained on.");
    static readonly Histogram<double> StepDuration = Meter.CreateHistogram<double>("orchestrator.step.duration", "ms", "Wall time of a training step.");
    static readonly Histogram<double> PhaseDuration = Meter.CreateHistogram<double>("orchestrator.step.phase.duration", "ms", "Wall time of one phase of a step.");
    static readonly Counter<long> BytesExchanged = Meter.CreateCounter<long>("orchestrator.step.exchanged", "By",
        "Activation and gradient bytes sent between the coordinator and workers on other silos.");
    static readonly Gauge<double> Loss = Meter.CreateGauge<double>("orchestrator.loss", "1", "Training loss of the latest step.");
    static readonly Gauge<double> Throughput = Meter.CreateGauge<double>("orchestrator.samples_per_second", "{sample}/s", "Samples per second of the latest step.");

    /// <summary>One finished step of <paramref name="job"/>; <paramref name="bytesExchanged"/> from <see cref="ExchangedBytes"/>.</summary>
    public static void Record(string job, StepMetrics step, long bytesExchanged)
    {
        var tag = new KeyValuePair<string, object?>("job", job);
        Steps.Add(1, tag);
        Samples.Add(step.BatchSize, tag);
        StepDuration.Record(step.TotalMs, tag);
        double[] phases = [step.TrunkForwardMs, step.TowerForwardMs, step.LossMs, step.TowerBackwardMs, step.TrunkBackwardMs];
        for (int i = 0; i < phases.Length; i++) PhaseDuration.Record(phases[i], tag, new("phase", Phases[i]));
        BytesExchanged.Add(bytesExchanged, tag);
        Loss.Record(step.Loss, tag);
        Throughput.Record(step.SamplesPerSecond, tag);
    }

    /// <summary>
    /// Bytes one step moves between the coordinator and its remote workers: each worker not on the coordinator's silo
    /// receives its groups' activations and output gradients and returns their outputs and input gradients.
    /// Workers on the coordinator's silo share tensors in memory and move nothing.
    /// </summary>
    public static long ExchangedBytes(JobSpec spec, JobStatus status)
    {
        long element = DTypeNames.ElementSize(spec.DType);
        long perGroup = 2L * spec.BatchSize * (spec.Shape.Input + spec.Shape.Output) * element;
        return status.Workers.Where(w => w.Silo != status.CoordinatorSilo).Sum(w => w.GroupCount * perGroup);
    }
}
