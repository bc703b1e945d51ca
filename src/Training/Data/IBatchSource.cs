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
    /// for (a background task would only compete with the step for the same cores).
    /// </summary>
    public static IBatchSource Create(JobSpec spec, Device? device = null)
    {
        IBatchSource source = spec.Data.Source switch
        {
            "synthetic" => new SyntheticTeacherSource(spec),
            "safetensors" => new SafetensorsSource(spec, device),
            _ => throw new JobSpecException("Data.Source", $"'{spec.Data.Source}' is not a data source."),
        };
        bool onDevice = source is SafetensorsSource { Device.type: TorchSharp.DeviceType.CUDA };
        return device is { type: TorchSharp.DeviceType.CUDA } && !onDevice ? new PrefetchingBatchSource(source, device) : source;
    }

    /// <summary>
    /// The spec's held-out data, or null when it validates on none: the last Validation.Fraction of
    /// <paramref name="train"/>'s file (the source <see cref="Create"/> made, which never trains on them), or the file at
    /// Validation.Path, read and checked now. The samples are read where they live (the training file's, maybe on its GPU).
    /// </summary>
    public static HeldOutData? HeldOut(JobSpec spec, IBatchSource train)
    {
        if (spec.Validation.Path is { } path)
        {
            var file = new SafetensorsSource(spec, path, "Validation.Path", CPU, holdOut: 0);
            return new HeldOutData(file, 0, file.Rows, owned: file);
        }
        if (spec.Validation.Fraction <= 0) return null;
        var rows = (train is PrefetchingBatchSource prefetching ? prefetching.Inner : train) as ISampleRows
                   ?? throw new JobSpecException("Validation.Fraction", $"data source '{spec.Data.Source}' has no samples to hold out.");
        long held = HeldOutData.HeldOutRows(rows.Rows, spec.Validation.Fraction);
        return new HeldOutData(rows, rows.Rows - held, held, owned: null);
    }

    internal static ScalarType DType(JobSpec spec) => Kernels.DTypeNames.Parse(spec.DType);
}
