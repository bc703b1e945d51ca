namespace Orchestrator.Training;

/// <summary>
/// The columns of a Parquet data file (Data.Source "parquet") that hold each sample, read in the order named. A
/// scalar column gives one value per row; the list columns among the names share the rest equally, each holding the
/// same fixed number of values in every row. Features: D_feat values per row, so one list column of D_feat values
/// (the default, "features") or D_feat scalar columns. Targets: N*D_out values per row read as (N, D_out), group-major
/// (value g*D_out + o is group g's output o), so one list column of N*D_out values (the default, "targets"), N list
/// columns of D_out (one per group) or N*D_out scalar columns. Columns may be float, double, int32 or int64; nulls are
/// errors.
/// </summary>
public sealed record ParquetColumns
{
    public const string DefaultFeatures = "features", DefaultTargets = "targets";

    public IReadOnlyList<string> Features { get; init; } = [DefaultFeatures];
    public IReadOnlyList<string> Targets { get; init; } = [DefaultTargets];

    /// <summary>Names compare by content: a spec read back from JSON (a checkpoint's) equals the one that was written.</summary>
    public bool Equals(ParquetColumns? other) =>
        other is not null && Features.SequenceEqual(other.Features) && Targets.SequenceEqual(other.Targets);

    public override int GetHashCode() => HashCode.Combine(string.Join(',', Features), string.Join(',', Targets));

    /// <summary>Throws a <see cref="JobSpecException"/> naming the list that is empty or names a column badly or twice.</summary>
    public void Validate()
    {
        Names(Features, "Data.Columns.Features");
        Names(Targets, "Data.Columns.Targets");
        if (Features.Intersect(Targets, StringComparer.Ordinal).FirstOrDefault() is { } both)
            throw new JobSpecException("Data.Columns", $"column '{both}' is named as a feature and as a target.");
    }

    static void Names(IReadOnlyList<string>? names, string field)
    {
        if (names is null || names.Count == 0) throw new JobSpecException(field, "must name at least one column.");
        for (int i = 0; i < names.Count; i++)
            if (string.IsNullOrWhiteSpace(names[i])) throw new JobSpecException($"{field}[{i}]", "is an empty column name.");
        if (names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new JobSpecException(field, $"names column '{twice.Key}' twice.");
    }
}
