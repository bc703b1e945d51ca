using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>Deterministic batches: batch i depends only on the data seed and i, never on what was read before.</summary>
public interface IBatchSource : IDisposable
{
    /// <summary>Batch number <paramref name="index"/>, in the job's dtype, on the CPU; the caller owns it.</summary>
    Batch Get(long index);
}

public static class BatchSources
{
    /// <summary>The source a spec names. Reads and checks data files now, so a bad file fails before training.</summary>
    public static IBatchSource Create(JobSpec spec) => spec.Data.Source switch
    {
        "synthetic" => new SyntheticTeacherSource(spec),
        "safetensors" => new SafetensorsSource(spec),
        _ => throw new JobSpecException("Data.Source", $"'{spec.Data.Source}' is not a data source."),
    };

    internal static ScalarType DType(JobSpec spec) => Kernels.DTypeNames.Parse(spec.DType);
}
