using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Training;
using StackExchange.Redis;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// Redis forgets the membership table (a restart without persistence) while a client trains: the silos keep running,
/// and the client rides through on the gateways it already knows instead of dying with "No gateways available".
/// Only this test's cluster's keys are deleted, so clusters of other tests sharing the Redis are untouched.
/// </summary>
[Collection(RedisCollection.Name)]
public class MembershipLossTests(RedisServer redis)
{
    [Fact]
    public async Task A_client_keeps_training_when_Redis_loses_the_membership_table()
    {
        await using var silos = await SiloProcesses.StartAsync(redis.ConnectionString, 2);
        var options = silos.ClientOptions();
        options.GatewayRefreshSeconds = 1;   // the client reads the (lost) table many times while the test waits
        await using var connection = await ClusterConnection.ConnectAsync(options, verbose: false);
        var spec = new JobSpec
        {
            Name = $"table-loss-{Guid.NewGuid():N}",
            Shape = new ModelShape { Groups = 4, Features = 8, Input = 8, Hidden = 16, Output = 4 },
            BatchSize = 32,
            Steps = 40,
            Seed = Random.Shared.Next(),
        };
        await using var session = await JobSession.StartAsync(connection.Grains, spec, resume: false, TimeSpan.FromMinutes(2));
        for (int i = 0; i < 5; i++) await session.StepAsync();

        int deleted = await DeleteClusterKeys(silos.ClusterId);
        Assert.True(deleted > 0, $"no Redis key names cluster {silos.ClusterId}: the test would prove nothing");
        // Many gateway refreshes (1 s each) meet the missing table; the client must still have its gateways after them.
        await Task.Delay(TimeSpan.FromSeconds(10));
        var steps = new List<StepMetrics>();
        while (steps.Count == 0 || steps[^1].Step + 1 < spec.Steps) steps.Add(await session.StepAsync());
        Assert.All(steps, s => Assert.True(double.IsFinite(s.Loss)));
        var devices = await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetDevicesAsync();
        Assert.Equal(2, devices.Length);
        await session.Coordinator.StopAsync();
    }

    async Task<int> DeleteClusterKeys(string clusterId)
    {
        var configuration = ConfigurationOptions.Parse(redis.ConnectionString);
        await using var connection = await ConnectionMultiplexer.ConnectAsync(configuration);
        var server = connection.GetServer(configuration.EndPoints[0]);
        var keys = server.Keys(pattern: $"*{clusterId}*").ToArray();
        await connection.GetDatabase().KeyDeleteAsync(keys);
        return keys.Length;
    }
}
