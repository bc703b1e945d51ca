using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>Checkpoints written by the workers and the coordinator, and jobs resumed from them on any layout.</summary>
[Collection(ClusterCollection.Name)]
public class CheckpointOnClusterTests(ClusterFixture fixture)
{
    static JobSpec Job(ScratchDirectory scratch, string[] devices, int steps, int every = 0) =>
        DistributedTrainingTests.SmallJob(ScalarType.Float64, devices, steps: steps) with
        {
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, EverySteps = every, Keep = 2 },
        };

    async Task<(List<double> Losses, Dictionary<string, TensorPayload> Parameters)> Train(JobSpec spec, bool resume = false)
    {
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec, resume);
        var losses = new List<double>();
        try
        {
            for (long step = status.StepsDone; step < spec.Steps; step++) losses.Add((await coordinator.StepAsync()).Loss);
            return (losses, await coordinator.GetParametersAsync());
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task A_job_resumed_on_another_layout_trains_exactly_like_one_never_stopped()
    {
        using var scratch = new ScratchDirectory();
        var full = Job(scratch, [], steps: 6);                                          // 3 workers, one per silo
        var (fullLosses, fullParameters) = await Train(full with { Name = full.Name + "-full" });

        var (firstLosses, _) = await Train(full with { Steps = 4, Checkpoint = full.Checkpoint with { EverySteps = 2 } });
        Assert.Equal([2L, 4L], new CheckpointStore(scratch.Root).List(full.Name));
        // Resume on one worker in another silo: the shards come from three files.
        var (restLosses, restParameters) = await Train(full with { Devices = ["Secondary_2/cpu"] }, resume: true);

        Assert.Equal(fullLosses, firstLosses.Concat(restLosses));
        var message = new MessageTensorTransport(long.MaxValue);
        using var scope = NewDisposeScope();
        foreach (var (name, payload) in fullParameters)
            Assert.True(Exactly.Same(message.Unpack(payload, CPU), message.Unpack(restParameters[name], CPU)), name);
    }

    [Fact]
    public async Task A_resume_past_a_damaged_checkpoint_says_which_step_it_took_and_why()
    {
        using var scratch = new ScratchDirectory();
        var full = Job(scratch, [], steps: 6);
        var (fullLosses, _) = await Train(full with { Name = full.Name + "-full" });
        await Train(full with { Steps = 4, Checkpoint = full.Checkpoint with { EverySteps = 2 } });
        var step4 = Path.Combine(new CheckpointStore(scratch.Root).JobDirectory(full.Name), "step-000000004");
        File.Delete(Directory.GetFiles(step4, "shard-*.safetensors")[0]);

        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(full.Name);
        var status = await coordinator.StartAsync(full, resume: true);
        try
        {
            Assert.Equal(2, status.StepsDone);
            Assert.Contains("continued from step 2", status.CheckpointNote);
            Assert.Contains("step 4 (", status.CheckpointNote);
            Assert.Contains("the file is missing", status.CheckpointNote);
            var losses = new List<double>();
            for (long step = status.StepsDone; step < full.Steps; step++) losses.Add((await coordinator.StepAsync()).Loss);
            Assert.Equal(fullLosses.Skip(2), losses);   // the steps after the intact checkpoint, exactly
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task On_demand_checkpoints_keep_only_the_newest()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, [], steps: 10);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        try
        {
            for (int i = 1; i <= 3; i++)
            {
                await coordinator.StepAsync();
                Assert.Equal(i, await coordinator.CheckpointAsync());
            }
            Assert.Equal(3, (await coordinator.GetStatusAsync()).LastCheckpointStep);
        }
        finally
        {
            await coordinator.StopAsync();
        }
        var store = new CheckpointStore(scratch.Root);
        Assert.Equal([2L, 3L], store.List(spec.Name));
        store.Open(spec.Name).Verify();
    }

    [Fact]
    public async Task Resuming_without_a_checkpoint_or_with_another_model_is_refused_before_training()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, [], steps: 2);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var none = await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.StartAsync(spec, resume: true));
        Assert.Contains("has no checkpoint", none.Message);

        await Train(spec);   // saves at its end
        var other = spec with { Shape = spec.Shape with { Hidden = spec.Shape.Hidden + 1 } };
        var differs = await Assert.ThrowsAsync<JobSpecException>(() => coordinator.StartAsync(other, resume: true));
        Assert.Contains("Shape", differs.Message);
        await coordinator.StopAsync();
    }
}
