using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>Deterministic batches: batch i depends only on the data seed and i, never on what was read before.</summary>
public interface IBatchSource : IDisposable
{
    /// <summary>Batch number <paramref name="index"/>, in the job's dtype, on the CPU (a prefetching source: on its device); the caller owns it.</summary>
    Batch Get(long index);
}

public static class BatchSources
{
    /// <summary>
    /// The source a spec names. Reads and checks data files now, so a bad file fails before training. For a GPU
    /// <paramref name="device"/> it delivers batches there: gathered on the device from samples that live there when
    /// they fit, else each prepared on the CPU while the step before it trains. On the CPU batches are made when asked
    /// for (a background task would only compete with the step for the same cores). A file source trains on the file's
    /// first <paramref name="trainRows"/> rows (by default those Validation.Fraction leaves): validation holds out the rest.
    /// </summary>
    public static IBatchSource Create(JobSpec spec, Device? device = null, long? trainRows = null)
    {
        IBatchSource source = spec.Data.Source switch
        {
            "synthetic" => new SyntheticTeacherSource(spec),
            "safetensors" => new SafetensorsSource(spec, device, trainRows),
            "parquet" => new ParquetSource(spec, device, trainRows),
            _ => throw new JobSpecException("Data.Source", $"'{spec.Data.Source}' is not a data source."),
        };
        bool onDevice = source is SafetensorsSource { Device.type: TorchSharp.DeviceType.CUDA } or ParquetSource { Device.type: TorchSharp.DeviceType.CUDA };
        return device is { type: TorchSharp.DeviceType.CUDA } && !onDevice ? new PrefetchingBatchSource(source, device) : source;
    }

    /// <summary>
    /// The spec's held-out data, or null when it validates on none: the last Validation.Fraction of
    /// <paramref name="train"/>'s file (the source <see cref="Create"/> made, which never trains on them), or every row of
    /// the file at Validation.Path (safetensors or Parquet by its extension, with the training data's layout), read and
    /// checked now, its values too (<see cref="HeldOutData.Check"/>). Rows are read where the samples live (the training file's, maybe on its GPU).
    /// </summary>
    public static HeldOutData? HeldOut(JobSpec spec, IBatchSource train)
    {
        if (spec.Validation.Path is { } path)
        {
            if (!File.Exists(path)) throw new JobSpecException("Validation.Path", $"file '{path}' does not exist.");
            var file = Create(spec with { Data = spec.Data with { Source = DataSpec.SourceFor(path), Path = path }, Validation = new ValidationSpec() }, CPU);
            var rows = (ISampleRows)file;
            return Checked(new HeldOutData(rows, 0, rows.Rows, $"'{path}'", owned: file), spec);
        }
        if (spec.Validation.Fraction <= 0) return null;
        var sampled = (train is PrefetchingBatchSource prefetching ? prefetching.Inner : train) as ISampleRows
                      ?? throw new JobSpecException("Validation.Fraction", $"data source '{spec.Data.Source}' has no samples to hold out.");
        long held = HeldOutData.HeldOutRows(sampled.Rows, spec.Validation.Fraction);
        return Checked(new HeldOutData(sampled, sampled.Rows - held, held, $"the held-out fraction of '{spec.Data.Path}'", owned: null), spec);
    }

    static HeldOutData Checked(HeldOutData heldOut, JobSpec spec)
    {
        try
        {
            heldOut.Check(spec);
            return heldOut;
        }
        catch
        {
            heldOut.Dispose();
            throw;
        }
    }

    /// <summary>The data file a spec names, checked to exist (the format's reader checks the rest).</summary>
    internal static string DataPath(JobSpec spec)
    {
        string path = spec.Data.Path ?? throw new JobSpecException("Data.Path", $"is required for {spec.Data.Source} data.");
        if (!File.Exists(path)) throw new JobSpecException("Data.Path", $"file '{path}' does not exist.");
        return path;
    }
}
