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

    internal static ScalarType DType(JobSpec spec) => Kernels.DTypeNames.Parse(spec.DType);
}
