namespace Orchestrator.Cluster.Tests;

/// <summary>Silos of a Redis cluster, one of them serving the dashboard, name Redis in their ready line by its endpoint, never its password.</summary>
[Collection(RedisClusterCollection.Name)]
public class SiloReadyLineTests(RedisClusterFixture fixture)
{
    [Fact]
    public async Task Each_silo_of_a_Redis_cluster_prints_its_ready_line_without_the_Redis_password()
    {
        var redis = StackExchange.Redis.ConfigurationOptions.Parse(fixture.Redis.ConnectionString);
        string password = redis.Password is { Length: > 0 } set ? set : throw new InvalidOperationException("the test Redis has no password");
        for (int i = 0; i < fixture.Cluster.Silos.Count; i++)
        {
            var silo = fixture.Cluster.Silos[i];
            await silo.WaitUntilAsync(output => output.Contains(" ready: "), TimeSpan.FromSeconds(30), "ready line");
            var ready = Assert.Single(silo.Output.Split('\n'), line => line.Contains(" ready: ")).TrimEnd('\r');
            Assert.StartsWith($"orchestrator silo silo-{i} ready: silo 127.0.0.1:", ready);
            Assert.Contains($", gateway 127.0.0.1:{fixture.Cluster.GatewayPorts[i]}, devices cpu, membership redis {redis.EndPoints[0]}", ready);
            Assert.DoesNotContain(password, silo.Output);
        }
    }
}
