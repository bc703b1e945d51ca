using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// The job's held-out samples, rows [First, First + Count) of a data file in file order: the last
/// <see cref="ValidationSpec.Fraction"/> of the training file (its source never trains on them), or every row of the
/// file at <see cref="ValidationSpec.Path"/>. <see cref="Source"/> names them in errors.
/// </summary>
public sealed class HeldOutData(ISampleRows rows, long first, long count, string source, IDisposable? owned) : IDisposable
{
    public ISampleRows Rows { get; } = rows;
    public long First { get; } = first;
    public long Count { get; } = count;
    /// <summary>Where the rows come from, for messages: "'val.safetensors'" or "the held-out fraction of 'train.safetensors'".</summary>
    public string Source { get; } = source;

    /// <summary>The rows held out of a file of <paramref name="rows"/> samples by <paramref name="fraction"/> (Keras' validation_split: the last ones).</summary>
    public static long HeldOutRows(long rows, double fraction) => fraction <= 0 ? 0 : rows - (long)Math.Floor(rows * (1 - fraction));

    /// <summary>The rows a source of <paramref name="rows"/> samples trains on, the first ones; throws when either part would be empty.</summary>
    public static long TrainRows(long rows, double fraction, string path)
    {
        long held = HeldOutRows(rows, fraction);
        if (fraction > 0 && (held == 0 || held == rows))
            throw new JobSpecException("Validation.Fraction",
                $"{fraction} of the {rows} samples of '{path}' leaves {(held == 0 ? "no sample to validate on" : "no sample to train on")}.");
        return rows - held;
    }

    /// <summary>
    /// Reads every held-out row once, in the runs of <paramref name="job"/>'s batch size that evaluation reads, and
    /// throws an <see cref="InvalidDataException"/> naming <see cref="Source"/>, the run and its file rows at the first
    /// run holding NaN or infinite features or targets, or (for BCE) targets outside [0, 1]. The job checks this when
    /// it starts: an evaluation that met such a run would report a NaN loss, or an AUC of labels that are not labels,
    /// after steps were already spent.
    /// </summary>
    public void Check(JobSpec job)
    {
        bool probabilities = job.Loss.Kind == LossKind.Bce;
        for (long start = First, run = 0; start < First + Count; start += job.BatchSize, run++)
        {
            long rows = Math.Min(job.BatchSize, First + Count - start);
            using var scope = NewDisposeScope();
            using var batch = Rows.ReadRows(start, rows);
            var bad = stack([
                batch.Features.isfinite().logical_not().sum(),
                batch.Targets.isfinite().logical_not().sum(),
                probabilities ? batch.Targets.lt(0).logical_or_(batch.Targets.gt(1)).sum() : zeros([], ScalarType.Int64, batch.Targets.device),
            ]).cpu().data<long>().ToArray();   // one read per run
            string where = $"{Source}, validation batch {run} (file rows [{start}, {start + rows}))";
            if (bad[0] > 0) throw new InvalidDataException($"{where}: its features hold {bad[0]} NaN or infinite values; validation needs finite data.");
            if (bad[1] > 0) throw new InvalidDataException($"{where}: its targets hold {bad[1]} NaN or infinite values; validation needs finite data.");
            if (bad[2] > 0)
                throw new InvalidDataException($"{where}: {bad[2]} of its targets are outside [0, 1], {BadBatchException.ProbabilityTargets}.");
        }
    }

    public void Dispose() => owned?.Dispose();
}
