using System.Text.Json;
using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

[Collection(RedisClusterCollection.Name)]
public class RedisMembershipTests(RedisClusterFixture fixture)
{
    static JobSpec SmallJob(int steps) => new()
    {
        Name = $"job-{Guid.NewGuid():N}",
        Shape = new ModelShape { Groups = 6, Features = 8, Input = 8, Hidden = 16, Output = 4 },
        BatchSize = 64,
        DType = ScalarType.Float32,
        Steps = steps,
        Optimizer = new OptimizerSpec { LearningRate = 0.01 },
    };

    /// <summary>
    /// Silo metadata spreads asynchronously: until the coordinator's silo has every silo's devices it places fewer
    /// workers. Retry (bounded) until the job spans all three silos.
    /// </summary>
    static async Task<(ICoordinatorGrain, JobStatus)> StartOnAllSilos(ClusterConnection connection, JobSpec spec)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
            var status = await coordinator.StartAsync(spec);
            if (status.Workers.Select(w => w.Silo).Distinct().Count() == 3) return (coordinator, status);
            await coordinator.StopAsync();
            Assert.True(DateTime.UtcNow < deadline, $"the job never spanned 3 silos: {string.Join(", ", status.Workers.Select(w => w.Silo))}");
            await Task.Delay(500);
            spec = spec with { Name = $"job-{Guid.NewGuid():N}" };
        }
    }

    [Fact]
    public async Task Three_silo_processes_joined_through_Redis_train_a_job_from_a_Redis_client()
    {
        await using var connection = await fixture.Cluster.ConnectAsync();
        Assert.Contains("Redis 127.0.0.1:", connection.Description);
        Assert.DoesNotContain("password", connection.Description);
        var devices = await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetDevicesAsync();
        Assert.Equal(["silo-0/cpu", "silo-1/cpu", "silo-2/cpu"], devices.Select(d => d.ToString()).Order());
        Assert.All(devices, d => Assert.StartsWith("127.0.0.1:", d.Address));
        // The data channel is advertised at the silo's advertised address; silo-2's on the port it was given.
        Assert.All(devices, d => Assert.StartsWith("127.0.0.1:", d.DataChannel));
        Assert.Equal($"127.0.0.1:{fixture.DataChannelPort}", devices.Single(d => d.Silo == "silo-2").DataChannel);

        var (coordinator, status) = await StartOnAllSilos(connection, SmallJob(steps: 40));
        try
        {
            Assert.Equal(Enumerable.Range(0, 6), status.Workers.SelectMany(w => Enumerable.Range(w.FirstGroup, w.GroupCount)));
            var losses = new List<double>();
            for (int i = 0; i < 40; i++) losses.Add((await coordinator.StepAsync()).Loss);
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.True(losses.TakeLast(5).Average() < 0.75 * losses.Take(5).Average(), $"loss did not fall: {string.Join(", ", losses)}");
            var final = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Finished, 40L), (final.State, final.StepsDone));
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task A_client_with_a_static_gateway_reaches_the_Redis_cluster()
    {
        var options = new ClusterConnectionOptions { ClusterId = fixture.Cluster.ClusterId, Gateways = [$"127.0.0.1:{fixture.Cluster.GatewayPorts[2]}"] };
        await using var connection = await ClusterConnection.ConnectAsync(options, verbose: false);
        var devices = await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetDevicesAsync();
        Assert.Equal(3, devices.Length);
    }

    [Fact]
    public async Task The_dashboard_serves_HTTP_on_its_port_when_asked_for()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var response = await http.GetAsync($"http://127.0.0.1:{fixture.DashboardPort}/");
        Assert.True(response.IsSuccessStatusCode, $"dashboard answered {(int)response.StatusCode}");
        Assert.Contains("<html", await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_log_file_holds_structured_events_with_silo_job_worker_and_step()
    {
        await using var connection = await fixture.Cluster.ConnectAsync();
        var spec = SmallJob(steps: 3) with { Devices = ["silo-1/cpu"] };
        var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        await coordinator.StartAsync(spec);
        for (int i = 0; i < 3; i++) await coordinator.StepAsync();
        await coordinator.StopAsync();

        // The file sink flushes as it writes; the daily file is "silo-1YYYYMMDD.json".
        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<JsonElement> events;
        while (true)
        {
            events = ReadEvents();
            if (events.Any(e => Has(e, "Job", spec.Name) && Has(e, "Method", "BackwardAsync") && StepOf(e) == 2) || DateTime.UtcNow > deadline) break;
            await Task.Delay(200);
        }
        Assert.NotEmpty(events);
        Assert.All(events, e => Assert.True(Has(e, "Silo", "silo-1"), $"event without Silo=silo-1: {e}"));
        Assert.Contains(events, e => Has(e, "Job", spec.Name) && e.GetProperty("Worker").GetString()!.StartsWith("silo-1/cpu/"));
        // The worker's grain calls of step s carry Step = s (it travels from the coordinator in the request context).
        var forwards = events.Where(e => Has(e, "Job", spec.Name) && Has(e, "Method", "ForwardAsync")).ToList();
        Assert.Equal([0L, 1L, 2L], forwards.Select(StepOf).Distinct().Order());
        Assert.All(forwards, e => Assert.StartsWith("silo-1/cpu/", e.GetProperty("Worker").GetString()));
    }

    static long? StepOf(JsonElement e) => e.TryGetProperty("Step", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null;

    List<JsonElement> ReadEvents()
    {
        var events = new List<JsonElement>();
        foreach (var file in Directory.GetFiles(fixture.LogDirectory, "silo-1*.json"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
                if (line.Length > 0) events.Add(JsonDocument.Parse(line).RootElement.Clone());
        }
        return events;
    }

    static bool Has(JsonElement e, string property, string value) =>
        e.TryGetProperty(property, out var p) && p.ValueKind == JsonValueKind.String && p.GetString() == value;
}
