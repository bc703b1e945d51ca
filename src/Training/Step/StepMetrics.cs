namespace Orchestrator.Training;

/// <summary>What one training step did and how long each phase took (milliseconds of wall clock).</summary>
public sealed record StepMetrics(
    long Step,
    double Loss,
    int BatchSize,
    double TrunkForwardMs,    // next batch + trunk forward
    double TowerForwardMs,    // slices scattered, grouped MLP forward on every worker, gathered
    double LossMs,            // loss and dY at the coordinator
    double TowerBackwardMs,   // dY scattered, backward on every worker, dX gathered (on silos their AdamW step lands with the next forward)
    double TrunkBackwardMs,   // trunk backward + AdamW (on silos after reading the step's verdict: its loss and input checks)
    double TotalMs,
    double ScatterMs = 0,     // packing slices for the workers, both exchanges (inside the towers phases, overlapping the workers' compute)
    double GatherMs = 0,      // unpacking the workers' replies into place, both exchanges (likewise)
    IReadOnlyDictionary<string, long>? BytesMoved = null,   // bytes of slices exchanged, by transport kind
    double DataMs = 0,        // of TrunkForwardMs: the batch onto the trunk's device (waiting for a prefetched one)
    double LearningRate = 0,  // of this step's AdamW update (the schedule's)
    double? GradientNorm = null,   // the global gradient norm before clipping (computed only when the job clips)
    EvalMetrics? Eval = null) // the evaluation on the held-out data that ran after this step, if one did
{
    public double SamplesPerSecond => TotalMs > 0 ? BatchSize * 1000.0 / TotalMs : 0;
}
