using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Data;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Small trained and checkpointed jobs for the prediction and export tests.</summary>
public static class InferenceJobs
{
    /// <summary>The checkpoint root of <paramref name="scratch"/>, where jobs are saved.</summary>
    public static CheckpointStore Store(ScratchDirectory scratch) => new(Path.Combine(scratch.Root, "checkpoints"));

    /// <summary>
    /// A bce job on a data file of fresh features and 0/1 targets (bce trains logits), five groups like
    /// <see cref="CheckpointJobs.Small"/>.
    /// </summary>
    public static JobSpec Bce(Check check, ScratchDirectory scratch, ScalarType dtype = ScalarType.Float32)
    {
        var job = CheckpointJobs.Small(check, dtype, name: "bce-job");
        using var scope = NewDisposeScope();
        string data = scratch.NewFile();
        SafeTensors.Write(data, new Dictionary<string, Tensor>
        {
            [SafetensorsSource.FeaturesName] = check.Randn([40, job.Shape.Features], ScalarType.Float32),
            [SafetensorsSource.TargetsName] = check.Randn([40, job.Shape.Groups, job.Shape.Output], ScalarType.Float32).gt(0).to(ScalarType.Float32),
        });
        return job with { Loss = new LossSpec { Kind = LossKind.Bce }, Data = job.Data with { Source = "safetensors", Path = data } };
    }

    /// <summary>Trains <paramref name="job"/> for <paramref name="steps"/> steps and checkpoints it; the caller owns the trainer.</summary>
    public static InProcessTrainer TrainAndSave(JobSpec job, CheckpointStore store, int steps = 3)
    {
        var trainer = CheckpointJobs.Trained(job, steps);
        trainer.SaveCheckpoint(store);
        return trainer;
    }

    /// <summary>The trainer's own forward (Trunk.Infer, then TowerShard.Infer) over the same batches a prediction takes: (S, N, D_out).</summary>
    public static Tensor TrainerForward(InProcessTrainer trainer, Tensor features, int batchSize)
    {
        using var scope = NewDisposeScope();
        var batches = features.split(batchSize, 0).Select(batch => trainer.Towers.Infer(trainer.Trunk.Infer(batch))).ToArray();
        return cat(batches, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Writes a data file whose "features" are (<paramref name="samples"/>, <paramref name="width"/>), without targets.</summary>
    public static string FeaturesFile(Check check, ScratchDirectory scratch, long samples, long width)
    {
        using var scope = NewDisposeScope();
        string path = scratch.NewFile();
        SafeTensors.Write(path, new Dictionary<string, Tensor> { [SafetensorsSource.FeaturesName] = check.Randn([samples, width], ScalarType.Float32) });
        return path;
    }
}
