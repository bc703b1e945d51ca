using Orchestrator.Client.Commands;
using Orchestrator.Grains;
using Orchestrator.Training;
using Orchestrator.Training.Checkpoints;

namespace Orchestrator.Cluster.Tests;

/// <summary>`orchestrator stop` and `status` as processes, against the shared three-silo Redis cluster.</summary>
[Collection(RedisClusterCollection.Name)]
public class JobControlCommandTests(RedisClusterFixture fixture)
{
    /// <summary>Runs the client with <paramref name="arguments"/>; returns its exit code and output.</summary>
    async Task<(int Code, string Output)> Orchestrator(IDictionary<string, string>? environment, params string[] arguments)
    {
        await using var client = ChildProcess.Start("orchestrator", "dotnet", [Build.ClientDll, .. arguments], environment);
        Assert.True(await client.WaitForExitAsync(TimeSpan.FromSeconds(120)), $"the client did not exit:\n{client.Output}");
        return (client.ExitCode, client.Output);
    }

    string Gateway => $"127.0.0.1:{fixture.Cluster.GatewayPorts[0]}";

    [Fact]
    public async Task A_gateway_on_the_command_line_wins_over_the_Redis_variable()
    {
        // The variable names a Redis nobody listens on: used, it would fail the command.
        var (code, output) = await Orchestrator(new Dictionary<string, string> { [ConnectionSettings.RedisVariable] = "127.0.0.1:1" },
            "status", "--gateway", Gateway, "--cluster-id", fixture.Cluster.ClusterId, "--connect-timeout", "60");
        Assert.True(code == 0, output);
        Assert.Contains("silo-2", output);
    }

    [Fact]
    public async Task Stop_checkpoints_a_job_another_client_runs_and_names_a_job_that_does_not_exist()
    {
        var checkpoints = Directory.CreateTempSubdirectory("orchestrator-stop-test").FullName;
        try
        {
            var spec = new JobSpec
            {
                Name = $"stop-{Guid.NewGuid():N}",
                Shape = new ModelShape { Groups = 3, Features = 8, Input = 8, Hidden = 16, Output = 4 },
                BatchSize = 32,
                Steps = 100,
                Checkpoint = new CheckpointSpec { Directory = checkpoints },
            };
            await using var connection = await fixture.Cluster.ConnectAsync();
            await using var session = await JobSession.StartAsync(connection.Grains, spec, resume: false, TimeSpan.FromMinutes(1));
            for (int i = 0; i < 3; i++) await session.StepAsync();

            var (code, output) = await Orchestrator(null, "stop", spec.Name, "--gateway", Gateway, "--cluster-id", fixture.Cluster.ClusterId);
            Assert.True(code == 0, output);
            Assert.Contains($"stopped job '{spec.Name}' at step 3 of 100; its newest checkpoint is at step 3", output);
            Assert.Equal([3L], new CheckpointStore(checkpoints).List(spec.Name));
            var stepAfterStop = await Assert.ThrowsAsync<InvalidOperationException>(session.StepAsync);
            Assert.Contains("Stopped", stepAfterStop.Message);

            (code, output) = await Orchestrator(null, "stop", "no-such-job", "--gateway", Gateway, "--cluster-id", fixture.Cluster.ClusterId);
            Assert.Equal(1, code);
            Assert.Contains("no job 'no-such-job' on this cluster", output);
        }
        finally
        {
            Directory.Delete(checkpoints, recursive: true);
        }
    }
}
