namespace Orchestrator.Training.Data;

/// <summary>
/// The job's held-out samples, rows [First, First + Count) of a data file in file order: the last
/// <see cref="ValidationSpec.Fraction"/> of the training file (its source never trains on them), or every row of the
/// file at <see cref="ValidationSpec.Path"/>.
/// </summary>
public sealed class HeldOutData(ISampleRows rows, long first, long count, IDisposable? owned) : IDisposable
{
    public ISampleRows Rows { get; } = rows;
    public long First { get; } = first;
    public long Count { get; } = count;

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

    public void Dispose() => owned?.Dispose();
}
