using Orchestrator.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training;

/// <summary>
/// The job on its held-out data, forward only: for each run of up to B held-out rows, in file order,
///   trunk.Infer: x = silu(features @ W + b)       (b, N, D_in)
///   towers.InferAsync: y                          (b, N, D_out)   nothing kept, no gradient
///   L_g += b * (group g's mean loss on the run)   (N) float64, summed on the trunk's device
/// then L_g / rows per group, the job's loss weighted as in training (<see cref="JobLoss"/>), and for BCE each group's
/// exact ROC AUC over all its outputs (its logits and targets gathered on the host as float64). Written once for the
/// single-process trainer and the coordinator, like <see cref="TrainingStep"/>.
/// </summary>
public sealed class Evaluation(JobSpec job, Trunk trunk, HeldOutData data, ITensorThread thread) : IDisposable
{
    readonly JobLoss loss = new(job.Loss);

    public async Task<EvalMetrics> RunAsync(long step, IStepTowers towers)
    {
        int groups = job.Shape.Groups;
        var device = trunk.Weight.device;
        bool auc = job.Loss.Kind == LossKind.Bce;
        var (scores, labels) = (new List<double>[groups], new List<double>[groups]);
        for (int g = 0; g < groups; g++) (scores[g], labels[g]) = ([], []);
        var sums = await thread.RunAsync(() => zeros([groups], ScalarType.Float64, device).DetachFromDisposeScope());   // (N)
        try
        {
            for (long start = data.First; start < data.First + data.Count; start += job.BatchSize)
            {
                long rows = Math.Min(job.BatchSize, data.First + data.Count - start);
                var (x, targets) = await thread.RunAsync(() =>
                {
                    using var scope = NewDisposeScope();
                    using var batch = data.Rows.ReadRows(start, rows);
                    var targets = batch.Targets.to(device).alias().DetachFromDisposeScope();        // (b, N, D_out)
                    return (trunk.Infer(batch.Features.to(device)).DetachFromDisposeScope(), targets);   // (b, N, D_in)
                });
                Tensor? y = null;
                try
                {
                    y = await towers.InferAsync(x);                                                // (b, N, D_out)
                    await thread.RunAsync(() =>
                    {
                        using var scope = NewDisposeScope();
                        sums.add_(loss.GroupMeans(y, targets).mul_(rows));
                        if (auc) Gather(y, targets, scores, labels);
                        return true;
                    });
                }
                finally
                {
                    await thread.RunAsync(() =>
                    {
                        x.Dispose(); targets.Dispose(); y?.Dispose();
                        return true;
                    });
                }
            }
            var means = await thread.RunAsync(() =>
            {
                using var host = sums.cpu();   // a handle of its own even on the CPU: a thread without a dispose scope would leave it to the finalizer
                return host.data<double>().Select(sum => sum / data.Count).ToArray();
            });
            double total = loss.Weighted(means);
            var perGroup = means.Select((m, g) => new GroupEval(g, m, auc ? RocAuc.Compute(scores[g].ToArray(), labels[g].ToArray()) : null)).ToArray();
            return new EvalMetrics(step, data.Count, total, perGroup);
        }
        finally
        {
            await thread.RunAsync(() =>
            {
                sums.Dispose();
                return true;
            });
        }
    }

    /// <summary>Each group's logits and targets of one run, flattened over (b, D_out), appended as float64 on the host.</summary>
    static void Gather(Tensor y, Tensor targets, List<double>[] scores, List<double>[] labels)
    {
        var (yHost, tHost) = (y.to(ScalarType.Float64, CPU).transpose(0, 1).contiguous(), targets.to(ScalarType.Float64, CPU).transpose(0, 1).contiguous());
        var (ys, ts) = (yHost.data<double>().ToArray(), tHost.data<double>().ToArray());   // (N, b, D_out) in order
        int per = ys.Length / scores.Length;
        for (int g = 0; g < scores.Length; g++)
        {
            scores[g].AddRange(ys.AsSpan(g * per, per));
            labels[g].AddRange(ts.AsSpan(g * per, per));
        }
    }

    public void Dispose() => loss.Dispose();
}
