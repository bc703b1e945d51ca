using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// The client's lease on a job: a job whose client went quiet is checkpointed and released, and --resume takes it
/// over; a job whose client is alive is refused to a second starter, and its session keeps it alive while idle;
/// stopping checkpoints first.
/// </summary>
[Collection(ClusterCollection.Name)]
public class JobLeaseTests(ClusterFixture fixture)
{
    static JobSpec Job(ScratchDirectory scratch, int steps, int lease) =>
        DistributedTrainingTests.SmallJob(ScalarType.Float64, [], steps: steps) with
        {
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, EverySteps = 0, Keep = 5 },
            LeaseSeconds = lease,
        };

    /// <summary>Polls the status until <paramref name="done"/> holds (bounded generously: CI machines are slow).</summary>
    static async Task<JobStatus> WaitFor(ICoordinatorGrain coordinator, Func<JobStatus, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var status = await coordinator.GetStatusAsync();
            if (done(status)) return status;
            Assert.True(DateTime.UtcNow < deadline, $"the job never reached the awaited state; it is {status.State} ({status.Error})");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_job_whose_client_went_quiet_is_checkpointed_released_and_taken_over_by_resume()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, steps: 8, lease: 2);
        var reference = spec with { Name = spec.Name + "-ref", Checkpoint = new CheckpointSpec(), LeaseSeconds = 60 };
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        var losses = new List<double>();
        for (int i = 0; i < 5; i++) losses.Add((await coordinator.StepAsync()).Loss);   // then this "client" goes quiet

        var abandoned = await WaitFor(coordinator, s => s.State == JobState.Abandoned);
        Assert.Equal((5L, 5L), (abandoned.StepsDone, abandoned.LastCheckpointStep));
        Assert.Empty(abandoned.Workers);
        Assert.Contains("no client was heard from", abandoned.Error);
        Assert.Contains("checkpointed at step 5", abandoned.Error);
        Assert.Equal([5L], new CheckpointStore(scratch.Root).List(spec.Name));
        await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.StepAsync());       // the quiet client cannot step on

        await using var session = await JobSession.StartAsync(fixture.Client, spec, resume: true, TimeSpan.FromMinutes(1));
        Assert.Equal(5, session.Status.StepsDone);
        for (int i = 5; i < spec.Steps; i++) losses.Add((await session.StepAsync()).Loss);
        var resumed = await session.Coordinator.GetParametersAsync();
        await session.Coordinator.StopAsync();

        var whole = fixture.Client.GetGrain<ICoordinatorGrain>(reference.Name);
        await whole.StartAsync(reference);
        var wholeLosses = new List<double>();
        for (int i = 0; i < reference.Steps; i++) wholeLosses.Add((await whole.StepAsync()).Loss);
        var expected = await whole.GetParametersAsync();
        await whole.StopAsync();
        Assert.Equal(wholeLosses, losses);
        var message = new MessageTensorTransport(long.MaxValue);
        using var scope = NewDisposeScope();
        foreach (var (name, payload) in expected)
            Assert.True(Exactly.Same(message.Unpack(payload, CPU), message.Unpack(resumed[name], CPU)), name);
    }

    [Fact]
    public async Task A_session_keeps_an_idle_job_alive_and_a_second_starter_is_refused_with_what_to_do()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, steps: 4, lease: 6);
        await using var session = await JobSession.StartAsync(fixture.Client, spec, resume: false, TimeSpan.FromMinutes(1));
        await session.StepAsync();
        await Task.Delay(TimeSpan.FromSeconds(15));                                        // 2.5 leases without a step
        var status = await session.Coordinator.GetStatusAsync();
        Assert.Equal(JobState.Running, status.State);

        var second = await Assert.ThrowsAsync<InvalidOperationException>(() => session.Coordinator.StartAsync(spec, resume: true));
        Assert.Contains("already running", second.Message);
        Assert.Contains($"orchestrator stop {spec.Name}", second.Message);
        Assert.Equal(1, (await session.StepAsync()).Step);                                 // the refusal changed nothing

        var stopped = await session.Coordinator.StopAsync();                               // checkpoints first
        Assert.Equal((JobState.Stopped, 2L, 2L), (stopped.State, stopped.StepsDone, stopped.LastCheckpointStep));
        Assert.Equal([2L], new CheckpointStore(scratch.Root).List(spec.Name));
    }

    [Fact]
    public async Task A_step_meant_for_another_coordinator_activation_is_refused_and_changes_nothing()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, steps: 4, lease: 60);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var started = await coordinator.StartAsync(spec);
        var lost = Guid.NewGuid();   // as if the session had started the job on an activation that died since
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.StepAsync(lost));
        Assert.Contains(lost.ToString(), refused.Message);
        Assert.Equal(0L, (await coordinator.GetStatusAsync()).StepsDone);
        Assert.Equal(0L, (await coordinator.StepAsync(started.Incarnation)).Step);   // its own incarnation steps
        Assert.Equal(1L, (await coordinator.StepAsync()).Step);                      // and an unfenced caller still can
        await coordinator.StopAsync(discard: true);
    }

    [Fact]
    public async Task Stopping_with_discard_saves_nothing()
    {
        using var scratch = new ScratchDirectory();
        var spec = Job(scratch, steps: 4, lease: 60);
        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        await coordinator.StepAsync();
        var stopped = await coordinator.StopAsync(discard: true);
        Assert.Equal((JobState.Stopped, 1L, (long?)null), (stopped.State, stopped.StepsDone, stopped.LastCheckpointStep));
        Assert.Empty(new CheckpointStore(scratch.Root).List(spec.Name));
    }
}
