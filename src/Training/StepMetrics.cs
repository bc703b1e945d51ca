namespace Orchestrator.Training;

/// <summary>What one training step did and how long each phase took (milliseconds of wall clock).</summary>
public sealed record StepMetrics(
    long Step,
    double Loss,
    int BatchSize,
    double TrunkForwardMs,    // next batch + trunk forward + scatter
    double TowerForwardMs,    // grouped MLP forward on every worker, gathered
    double LossMs,            // loss and dY at the coordinator
    double TowerBackwardMs,   // backward + AdamW on every worker, dX gathered
    double TrunkBackwardMs,   // trunk backward + AdamW
    double TotalMs)
{
    public double SamplesPerSecond => TotalMs > 0 ? BatchSize * 1000.0 / TotalMs : 0;
}
