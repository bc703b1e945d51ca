using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Grains.Tests;

/// <summary>
/// A silo dies mid-training: the coordinator notices the failed calls, rebuilds the job on the surviving silos from
/// the last checkpoint and trains on. Its own 3-silo cluster, since a silo of it is killed.
/// </summary>
public class SiloLossTests : IAsyncLifetime
{
    readonly ClusterFixture fixture = new();

    public Task InitializeAsync() => fixture.InitializeAsync();
    public Task DisposeAsync() => fixture.DisposeAsync();

    [Fact]
    public async Task A_killed_silo_costs_the_steps_since_the_last_checkpoint_and_nothing_else()
    {
        using var scratch = new ScratchDirectory();
        var spec = DistributedTrainingTests.SmallJob(ScalarType.Float64, [], steps: 8) with
        {
            Checkpoint = new CheckpointSpec { Directory = scratch.Root, EverySteps = 2 },
        };
        using var reference = new InProcessTrainer(spec);
        var expectedLosses = Enumerable.Range(0, spec.Steps).Select(_ => reference.Step().Loss).ToArray();

        var coordinator = fixture.Client.GetGrain<ICoordinatorGrain>(spec.Name);
        var status = await coordinator.StartAsync(spec);
        try
        {
            Assert.Equal(3, status.Workers.Length);
            for (int i = 0; i < 3; i++) await coordinator.StepAsync();   // checkpoint at step 2, step 3 done

            // Not the primary (it holds the development membership) and not the coordinator's silo.
            var victim = fixture.Cluster.SecondarySilos.First(s => s.Name != status.CoordinatorSilo);
            await fixture.Cluster.KillSiloAsync(victim);

            var seen = new List<StepMetrics>();
            for (int calls = 0; calls < 3 * spec.Steps && (seen.Count == 0 || seen[^1].Step + 1 < spec.Steps); calls++)
                seen.Add(await coordinator.StepAsync());

            var after = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Finished, 1, (long)spec.Steps), (after.State, after.Recoveries, after.StepsDone));
            Assert.DoesNotContain(after.Workers, w => w.Silo == victim.Name);
            Assert.Equal(2, seen[0].Step);   // the step that was lost is trained again from the checkpoint at step 2
            foreach (var m in seen) Assert.Equal(expectedLosses[m.Step], m.Loss, 1e-12);

            var actual = await coordinator.GetParametersAsync();
            var message = new MessageTensorTransport(long.MaxValue);
            using var scope = NewDisposeScope();
            foreach (var (name, want) in reference.Parameters())
            {
                using (want) new Check().Close(message.Unpack(actual[name], CPU), want, 1e-12, name);
            }
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }
}
