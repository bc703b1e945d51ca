using System.Diagnostics;
using Orchestrator.Grains;
using Orchestrator.Grains.Transport;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// One of three silo processes is killed with SIGKILL mid-training: a worker's, or the coordinator's own. The job
/// finishes on the other two, restored from its last checkpoint (by its coordinator, or by a new coordinator
/// activation that the client's <see cref="JobSession"/> resumes), with exactly the parameters of a run that was never
/// interrupted; every checkpoint on disk stays intact. Its own silos (they are killed), in the Redis of the shared fixture under a cluster id of their own.
/// </summary>
[Collection(RedisClusterCollection.Name)]
public class SiloKillTests(RedisClusterFixture fixture)
{
    /// <summary>A worker's silo dies: the coordinator rebuilds the job on the others, or a new activation resumes it.</summary>
    [Fact]
    public Task A_job_survives_a_worker_silo_process_killed_with_SIGKILL() =>
        TrainThroughKill((silos, status) => silos.Silos.First(s => s.Name != status.CoordinatorSilo), coordinatorLost: false);

    /// <summary>
    /// The coordinator's own silo dies mid-step: the client notices through its lease renewals within seconds (not
    /// after the 2-minute response timeout) and resumes the job from its last checkpoint on a new coordinator.
    /// </summary>
    [Fact]
    public Task A_job_survives_its_coordinator_silo_process_killed_with_SIGKILL() =>
        TrainThroughKill((silos, status) => silos.Silos.Single(s => s.Name == status.CoordinatorSilo), coordinatorLost: true);

    async Task TrainThroughKill(Func<SiloProcesses, JobStatus, ChildProcess> victimOf, bool coordinatorLost)
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
                DType = ScalarType.Float64,
                Steps = 10,
                Seed = seed,
                Data = new DataSpec { DataSeed = seed + 1L, TeacherSeed = seed + 2L },
                Checkpoint = new CheckpointSpec { Directory = checkpoints, EverySteps = 3, Keep = 10 },
                LeaseSeconds = 4,
            };
            await using var connection = await silos.ConnectAsync();
            var notices = new List<string>();
            await using var session = await JobSession.StartAsync(connection.Grains, spec, resume: false, TimeSpan.FromMinutes(2), notices.Add);
            var status = session.Status;
            Assert.Equal(3, status.Workers.Select(w => w.Silo).Distinct().Count());
            var seen = new List<StepMetrics>();
            for (int i = 0; i < 4; i++) seen.Add(await session.StepAsync());   // checkpoint at step 3, step 4 done

            var victim = victimOf(silos, status);
            Process.GetProcessById(victim.Id).Kill();                          // SIGKILL: no goodbye to the cluster
            Assert.True(await victim.WaitForExitAsync(TimeSpan.FromSeconds(10)));

            var clock = Stopwatch.StartNew();
            seen.Add(await session.StepAsync());                               // the step that meets the loss
            // Well below the silos' 120 s response timeout: the loss was noticed, not waited out.
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), $"the step after the kill took {clock.Elapsed}");
            while (seen[^1].Step + 1 < spec.Steps) seen.Add(await session.StepAsync());
            var after = await session.Coordinator.GetStatusAsync();
            Assert.Equal((JobState.Finished, 10L), (after.State, after.StepsDone));
            Assert.DoesNotContain(after.Workers, w => w.Silo == victim.Name);
            Assert.NotEqual(victim.Name, after.CoordinatorSilo);
            if (coordinatorLost)
                Assert.Contains(notices, n => n.Contains($"lost with its silo {victim.Name}"));
            else   // the coordinator rebuilt the job itself, or it lost its directory entry and a new activation resumed it
                Assert.True(after.Recoveries == 1 || notices.Count > 0, $"recoveries {after.Recoveries}, notices [{string.Join("; ", notices)}]");
            Assert.Equal(3, seen[4].Step);                                     // back to the checkpoint at step 3

            using var reference = new InProcessTrainer(spec with { Checkpoint = new CheckpointSpec() });
            var expectedLosses = Enumerable.Range(0, spec.Steps).Select(_ => reference.Step().Loss).ToArray();
            foreach (var m in seen) Assert.Equal(expectedLosses[m.Step], m.Loss, 1e-12);
            var actual = await session.Coordinator.GetParametersAsync();
            var message = new MessageTensorTransport(long.MaxValue);
            using (var scope = NewDisposeScope())
                foreach (var (name, want) in reference.Parameters())
                    using (want)
                    {
                        var got = message.Unpack(actual[name], CPU);
                        Assert.True((got - want).abs().max().item<double>() <= 1e-12 * want.abs().max().item<double>(), name);
                    }
            await session.Coordinator.StopAsync();

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
