using System.Diagnostics.Metrics;
using Orchestrator.Grains;
using Orchestrator.Grains.Observability;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

public class TrainingMetricsTests
{
    [Fact]
    public void A_recorded_step_reaches_every_instrument_of_the_Orchestrator_meter_tagged_with_its_job()
    {
        string job = $"metrics-{Guid.NewGuid():N}";
        var seen = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == TrainingMetrics.MeterName) l.EnableMeasurementEvents(instrument);
        };
        void OnMeasurement(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var t = new Dictionary<string, object?>(tags.ToArray());
            if (Equals(t.GetValueOrDefault("job"), job)) lock (seen) seen.Add((instrument.Name, value, t));
        }
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => OnMeasurement(i, v, tags));
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => OnMeasurement(i, v, tags));
        listener.Start();

        var step = new StepMetrics(Step: 3, Loss: 0.25, BatchSize: 64, TrunkForwardMs: 1, TowerForwardMs: 2, LossMs: 0.5,
            TowerBackwardMs: 4, TrunkBackwardMs: 1.5, TotalMs: 10);
        TrainingMetrics.Record(job, step, bytesExchanged: 4096);

        double Single(string name) => Assert.Single(seen, s => s.Instrument == name).Value;
        Assert.Equal(1, Single("orchestrator.steps"));
        Assert.Equal(64, Single("orchestrator.samples"));
        Assert.Equal(10, Single("orchestrator.step.duration"));
        Assert.Equal(4096, Single("orchestrator.step.exchanged"));
        Assert.Equal(0.25, Single("orchestrator.loss"));
        Assert.Equal(6400, Single("orchestrator.samples_per_second"));
        var phases = seen.Where(s => s.Instrument == "orchestrator.step.phase.duration").ToDictionary(s => (string)s.Tags["phase"]!, s => s.Value);
        Assert.Equal(new Dictionary<string, double>
        {
            ["trunk_forward"] = 1, ["tower_forward"] = 2, ["loss"] = 0.5, ["tower_backward"] = 4, ["trunk_backward"] = 1.5,
        }, phases);
    }

    [Fact]
    public void Exchanged_bytes_count_only_workers_on_other_silos()
    {
        var spec = new JobSpec { Shape = new ModelShape { Groups = 4, Input = 8, Output = 2 }, BatchSize = 10, DType = ScalarType.Float32 };
        var status = new JobStatus("j", JobState.Running, 0, 1, null,
        [
            new WorkerInfo("a", "s0", "cpu", 0, 1, TensorPayloadKind.Local),
            new WorkerInfo("b", "s1", "cpu", 1, 3, TensorPayloadKind.Message),
        ], null, "s0");
        // 3 remote groups x (x and dY in, Y and dX out) = 3 * 2 * 10 * (8 + 2) * 4 bytes
        Assert.Equal(3L * 2 * 10 * (8 + 2) * 4, TrainingMetrics.ExchangedBytes(spec, status));
    }
}
