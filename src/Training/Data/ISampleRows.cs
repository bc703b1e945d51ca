namespace Orchestrator.Training.Data;

/// <summary>
/// A data file's samples in file order, read one contiguous range at a time. Validation reads its held-out rows (the
/// file's last ones, or all of a separate file) this way, in order, each once per evaluation.
/// </summary>
public interface ISampleRows
{
    /// <summary>S: the samples in the file.</summary>
    long Rows { get; }

    /// <summary>
    /// Rows [start, start + count) in file order: features (count, D_feat) and targets (count, N, D_out) in the job's
    /// dtype, on the CPU (or the GPU a source keeps its samples on); the caller owns them.
    /// </summary>
    Batch ReadRows(long start, long count);
}
