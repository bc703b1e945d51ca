namespace Orchestrator.Training;

/// <summary>
/// Judges each evaluation against the best so far: a lower (finite) loss is the new best; otherwise one more evaluation
/// without improvement, and <paramref name="patience"/> of them in a row stop the job (0: never).
/// </summary>
public sealed class EarlyStopping(int patience, ValidationRecord? restored)
{
    /// <summary>The state after the last judged evaluation (or the restored one); null before any.</summary>
    public ValidationRecord? State { get; private set; } = restored;

    public EvalMetrics Judge(EvalMetrics eval)
    {
        bool best = double.IsFinite(eval.Loss) && (State is null || eval.Loss < State.BestLoss);
        State = best ? new ValidationRecord(eval.Step, eval.Loss, 0)
            : State is null ? null   // no finite loss yet: nothing to be patient about
            : State with { SinceBest = State.SinceBest + 1 };
        int since = State?.SinceBest ?? 0;
        return eval with
        {
            Best = best,
            SinceBest = since,
            BestLoss = State?.BestLoss ?? double.NaN,
            BestStep = State?.BestStep ?? -1,
            StopsEarly = patience > 0 && since >= patience,
        };
    }
}
