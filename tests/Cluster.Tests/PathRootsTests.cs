using Orchestrator.Grains;
using Orchestrator.Training;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// A silo configured with Silo:PathRoots serves clients' data paths and checkpoint directories only under those roots,
/// links included, and refuses the rest before touching them; with Silo:MaxJobMemoryMB it refuses a job larger than that.
/// </summary>
[Collection(RedisCollection.Name)]
public class PathRootsTests(RedisServer redis)
{
    [Fact]
    public async Task A_silo_refuses_client_paths_outside_its_roots_even_through_a_link()
    {
        var root = Directory.CreateTempSubdirectory("orchestrator-roots").FullName;
        try
        {
            var escape = Path.Combine(root, "etc-link");
            File.CreateSymbolicLink(escape, "/etc");
            await using var silos = await SiloProcesses.StartAsync(redis.ConnectionString, 1, _ => ["--Silo:PathRoots:0", root, "--Silo:MaxJobMemoryMB", "16"]);
            await using var connection = await silos.ConnectAsync();
            var spec = new JobSpec
            {
                Name = $"roots-{Guid.NewGuid():N}",
                Shape = new ModelShape { Groups = 2, Features = 4, Input = 4, Hidden = 8, Output = 2 },
                BatchSize = 8,
                Steps = 2,
            };
            async Task<string> Refused(JobSpec job) =>
                (await Assert.ThrowsAnyAsync<Exception>(() => connection.Grains.GetGrain<ICoordinatorGrain>(job.Name).StartAsync(job))).Message;

            var shadow = await Refused(spec with { Data = new DataSpec { Source = "safetensors", Path = "/etc/shadow" } });
            Assert.Contains("Data.Path: '/etc/shadow' is outside the directories this silo serves (Silo:PathRoots:", shadow);
            var linked = await Refused(spec with { Data = new DataSpec { Source = "safetensors", Path = Path.Combine(escape, "passwd") } });
            Assert.Contains("is outside the directories this silo serves", linked);
            var checkpoints = await Refused(spec with { Checkpoint = new CheckpointSpec { Directory = "/var/tmp/elsewhere" } });
            Assert.Contains("Checkpoint.Directory: '/var/tmp/elsewhere' is outside", checkpoints);

            // About 34 MB of towers (the synthetic teacher's, on the coordinator's device): over the silo's 16 MiB per job.
            var large = await Refused(spec with { Name = spec.Name + "-large", Shape = spec.Shape with { Groups = 4, Input = 64, Hidden = 4096 } });
            Assert.Matches(@"needs [\d.]+ GiB on silo-0/cpu .* but 0\.02 GiB is available there \(Silo:MaxJobMemoryMB = 16\)", large);

            // Two workers on one device, each ~9 MB and so under the limit alone, together over it: refused, counted together.
            var data = Path.Combine(root, "data.safetensors");
            using (var scope = TorchSharp.torch.NewDisposeScope())
                Training.Data.SafeTensors.Write(data, new Dictionary<string, TorchSharp.torch.Tensor>
                {
                    [Training.Data.SafetensorsSource.FeaturesName] = TorchSharp.torch.randn(16, 4),
                    [Training.Data.SafetensorsSource.TargetsName] = TorchSharp.torch.randn(16, 4, 2),
                });
            var shared = await Refused(spec with
            {
                Name = spec.Name + "-shared", Shape = spec.Shape with { Groups = 4, Input = 64, Hidden = 2048 }, WorkersPerDevice = 2,
                Data = new DataSpec { Source = "safetensors", Path = data },
            });
            Assert.Contains("4 of its groups on this device) needs", shared);

            var inside = spec with { Checkpoint = new CheckpointSpec { Directory = Path.Combine(root, "checkpoints") } };
            await using var session = await JobSession.StartAsync(connection.Grains, inside, resume: false, TimeSpan.FromMinutes(1));
            for (int i = 0; i < inside.Steps; i++) await session.StepAsync();
            await session.Coordinator.StopAsync();
            Assert.True(Directory.Exists(Path.Combine(root, "checkpoints", inside.Name)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
