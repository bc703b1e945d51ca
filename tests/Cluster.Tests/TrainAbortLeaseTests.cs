using Orchestrator.Grains;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// A `train` client of the shared three-silo cluster aborted by a second signal: it leaves at once, and the job's
/// lease then checkpoints it at its last completed step on the cluster, from where `train --resume` continues.
/// </summary>
[Collection(RedisClusterCollection.Name)]
public class TrainAbortLeaseTests(RedisClusterFixture fixture)
{
    static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task An_aborted_client_leaves_its_job_to_the_lease_which_checkpoints_it_for_resume()
    {
        var checkpoints = Directory.CreateTempSubdirectory("orchestrator-abort-test").FullName;
        try
        {
            string name = $"abort-{Guid.NewGuid():N}";
            string[] cluster = ["--gateway", $"127.0.0.1:{fixture.Cluster.GatewayPorts[0]}", "--cluster-id", fixture.Cluster.ClusterId];
            await using (var train = ChildProcess.Start("train", "env", ["--default-signal=INT", "dotnet", Build.ClientDll, "train", .. cluster,
                             "--groups", "3", "--features", "8", "--input", "8", "--hidden", "16", "--output", "4", "--batch-size", "32",
                             "--steps", "5000", "--lease", "4", "--checkpoint-dir", checkpoints, "--name", name]))
            {
                await train.WaitUntilAsync(output => output.Contains("\nstep "), Patience, "progress line");
                // Both arrive together, while a step is surely still running: the process takes them when it continues.
                train.Signal(19);   // SIGSTOP
                train.Signal(2);
                train.Signal(15);
                train.Signal(18);   // SIGCONT
                Assert.True(await train.WaitForExitAsync(Patience), $"train did not exit:\n{train.Output}");
                Assert.True(train.ExitCode is 130 or 143, $"exit code {train.ExitCode}:\n{train.Output}");
                Assert.Contains("again: aborting now", train.Output);
                Assert.Contains($"aborted: job '{name}' is left to its coordinator, which checkpoints it at its last completed step and releases " +
                                "its devices when its lease of 4 s runs out", train.Output);
            }

            await using var connection = await fixture.Cluster.ConnectAsync();
            var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(name);
            var deadline = DateTime.UtcNow + Patience;
            JobStatus status;
            while ((status = await coordinator.GetStatusAsync()).State != JobState.Abandoned)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the job was not abandoned: {status}");
                await Task.Delay(250);
            }
            Assert.True(status.LastCheckpointStep == status.StepsDone, $"{status}");
            long step = status.StepsDone;
            Assert.InRange(step, 500, 4999);
            new CheckpointStore(checkpoints).Open(name, step).Verify();

            await using var resumed = ChildProcess.Start("train", "dotnet",
                [Build.ClientDll, "train", .. cluster, "--checkpoint-dir", checkpoints, "--name", name, "--resume", "--steps", $"{step + 2}"]);
            Assert.True(await resumed.WaitForExitAsync(Patience), $"train --resume did not exit:\n{resumed.Output}");
            Assert.True(resumed.ExitCode == 0, resumed.Output);
            Assert.Contains($"resumed from the checkpoint at step {step}", resumed.Output);
            Assert.Equal(step + 2, new CheckpointStore(checkpoints).LatestStep(name));
        }
        finally
        {
            Directory.Delete(checkpoints, recursive: true);
        }
    }
}
