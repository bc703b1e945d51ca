namespace Orchestrator.Training;

/// <summary>
/// The learning rate of optimizer step t (t = 1 for the first update), from <see cref="ScheduleSpec"/>:
///   warm-up    t &lt;= W:          lr * t / W
///   constant:                    lr
///   decay      W &lt; t &lt; D:     p = (t - W) / (D - W);  cosine: floor + (lr - floor) (1 + cos(pi p)) / 2;  linear: floor + (lr - floor) (1 - p)
///   after      t &gt;= D:          floor
/// It depends on t alone: the trunk's and every shard's AdamW, which take the same steps, agree on it without talking,
/// and a resumed job continues it exactly from the optimizer step its checkpoint saved.
/// </summary>
public static class LearningRateSchedule
{
    public static double At(OptimizerSpec optimizer, long step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        var (lr, s) = (optimizer.LearningRate, optimizer.Schedule);
        if (step <= s.WarmupSteps) return lr * step / s.WarmupSteps;
        if (s.Kind == ScheduleKind.Constant) return lr;
        if (step >= s.DecaySteps) return s.MinLearningRate;
        double progress = (double)(step - s.WarmupSteps) / (s.DecaySteps - s.WarmupSteps);
        double shape = s.Kind == ScheduleKind.Cosine ? (1 + Math.Cos(Math.PI * progress)) / 2 : 1 - progress;
        return s.MinLearningRate + (lr - s.MinLearningRate) * shape;
    }
}
