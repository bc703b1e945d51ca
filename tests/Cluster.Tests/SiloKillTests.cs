using System.Diagnostics;
using Orchestrator.Grains;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// One of three silo processes is killed with SIGKILL mid-training. The job finishes on the other two, restored from
/// its last checkpoint (by its coordinator, or by a new coordinator activation when the old one's directory entry
/// died with the silo), with exactly the parameters of a run that was never interrupted; every checkpoint on disk
/// stays intact. Its own silos (they are killed), in the Redis of the shared fixture under a cluster id of their own.
/// </summary>
[Collection(RedisClusterCollection.Name)]
public class SiloKillTests(RedisClusterFixture fixture)
{
    [Fact]
    public async Task A_job_survives_a_silo_process_killed_with_SIGKILL()
    {
        var checkpoints = Directory.CreateTempSubdirectory("orchestrator-kill-test").FullName;
        await using var silos = await SiloProcesses.StartAsync(fixture.Redis.ConnectionString, 3);
        try
        {
            int seed = Random.Shared.Next();
            var spec = new JobSpec
            {
                Name = $"kill-{Guid.NewGuid():N}",
                Shape = new ModelShape { Groups = 6, Features = 8, Input = 8, Hidden = 16, Output = 4 },
                BatchSize = 64,
                DType = "float64",
                Steps = 10,
                Seed = seed,
                Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
                Checkpoint = new CheckpointSpec { Directory = checkpoints, EverySteps = 3, Keep = 10 },
            };
            await using var connection = await silos.ConnectAsync();
            var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
            var status = await coordinator.StartAsync(spec);
            Assert.Equal(3, status.Workers.Select(w => w.Silo).Distinct().Count());
            for (int i = 0; i < 4; i++) await coordinator.StepAsync();   // checkpoint at step 3, step 4 done

            var victim = silos.Silos.First(s => s.Name != status.CoordinatorSilo);
            Process.GetProcessById(victim.Id).Kill();                    // SIGKILL: no goodbye to the cluster
            Assert.True(await victim.WaitForExitAsync(TimeSpan.FromSeconds(10)));

            var seen = new List<StepMetrics>();
            var resumes = new List<string>();
            for (int calls = 0; calls < 3 * spec.Steps && (seen.Count == 0 || seen[^1].Step + 1 < spec.Steps); calls++)
                seen.Add(await ResilientStep.RunAsync(coordinator, spec, TimeSpan.FromMinutes(2), resumes.Add));   // as the CLI does
            var after = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Finished, 10L), (after.State, after.StepsDone));
            // Either the coordinator rebuilt the job itself, or it was lost with its directory entry and a new
            // activation resumed the job from the checkpoint: both go back to step 3.
            Assert.True(after.Recoveries == 1 || resumes.Count == 1, $"recoveries {after.Recoveries}, resumes {resumes.Count}");
            Assert.DoesNotContain(after.Workers, w => w.Silo == victim.Name);
            Assert.Equal(3, seen[0].Step);                               // back to the checkpoint at step 3

            using var reference = new InProcessTrainer(spec with { Checkpoint = new CheckpointSpec() });
            var expectedLosses = Enumerable.Range(0, spec.Steps).Select(_ => reference.Step().Loss).ToArray();
            foreach (var m in seen) Assert.Equal(expectedLosses[m.Step], m.Loss, 1e-12);
            var actual = await coordinator.GetParametersAsync();
            var message = new MessageTensorTransport(long.MaxValue);
            using var scope = NewDisposeScope();
            foreach (var (name, want) in reference.Parameters())
                using (want)
                {
                    var got = message.Unpack(actual[name], CPU);
                    Assert.True((got - want).abs().max().item<double>() <= 1e-12 * want.abs().max().item<double>(), name);
                }
            await coordinator.StopAsync();

            var store = new CheckpointStore(checkpoints);
            Assert.Equal([3L, 6L, 9L, 10L], store.List(spec.Name));
            foreach (var step in store.List(spec.Name)) store.Open(spec.Name, step).Verify();
        }
        finally
        {
            Directory.Delete(checkpoints, recursive: true);
        }
    }
}
