namespace Orchestrator.Training;

/// <summary>One group's loss on the held-out data (MSE, or for BCE the logloss) and, for BCE with 0/1 targets, its ROC AUC.</summary>
public sealed record GroupEval(int Group, double Loss, double? Auc);

/// <summary>
/// What an evaluation on the held-out data measured after step <see cref="Step"/> (that many steps trained): the job's
/// loss (weighted over groups as in training) and each group's, and how it compares with the best so far.
/// </summary>
public sealed record EvalMetrics(long Step, long Samples, double Loss, IReadOnlyList<GroupEval> Groups)
{
    /// <summary>The lowest validation loss so far: the job's "best" checkpoint is this step's.</summary>
    public bool Best { get; init; }
    /// <summary>Evaluations in a row since the best one (0 when this is the best).</summary>
    public int SinceBest { get; init; }
    /// <summary>The best loss so far and its step (this evaluation's when <see cref="Best"/>).</summary>
    public double BestLoss { get; init; }
    public long BestStep { get; init; }
    /// <summary>Early stopping ends the job here: <see cref="ValidationSpec.EarlyStopPatience"/> evaluations without a better loss.</summary>
    public bool StopsEarly { get; init; }
}

/// <summary>Where validation stands: the best loss, its step, evaluations since. Saved in every checkpoint so that early stopping resumes exactly.</summary>
public sealed record ValidationRecord(long BestStep, double BestLoss, int SinceBest);
