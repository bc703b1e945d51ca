using TorchSharp;
using static TorchSharp.torch;

namespace Orchestrator.Training.Data;

/// <summary>
/// Targets from a fixed random model of the job's own shape (the teacher, seeded by Data.TeacherSeed), on features
/// drawn from (Data.DataSeed, batch index). The student can represent the teacher exactly, so the loss must fall.
/// </summary>
public sealed class SyntheticTeacherSource : IBatchSource
{
    readonly JobSpec spec;
    readonly ScalarType dtype;
    readonly Trunk trunk;
    readonly TowerShard towers;

    public SyntheticTeacherSource(JobSpec spec)
    {
        this.spec = spec;
        dtype = spec.DType;
        trunk = new Trunk(spec.Shape, spec.Data.TeacherSeed, dtype, CPU, optimizer: null);
        towers = new TowerShard(spec.Shape, new GroupRange(0, spec.Shape.Groups), spec.Data.TeacherSeed, dtype, CPU, optimizer: null);
    }

    public Batch Get(long index)
    {
        using var scope = NewDisposeScope();
        var features = GroupInit.Normal(spec.Data.DataSeed, index, "features", [spec.BatchSize, spec.Shape.Features], 1.0, dtype, CPU);
        var targets = towers.Infer(trunk.Infer(features));   // (B, N, D_out)
        return new Batch(features.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope());
    }

    public void Dispose()
    {
        trunk.Dispose();
        towers.Dispose();
    }
}
