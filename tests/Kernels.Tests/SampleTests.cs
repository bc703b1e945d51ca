using System.Globalization;
using System.Text.RegularExpressions;

namespace Orchestrator.Kernels.Tests;

/// <summary>samples/GroupedMlpSample, built with these tests, runs as a user would run it and learns.</summary>
public partial class SampleTests
{
    [GeneratedRegex(@"^step\s+(\d+)\s+loss\s+(\S+)$", RegexOptions.Multiline)]
    private static partial Regex LossLine();

    [Fact]
    public async Task The_sample_trains_and_its_loss_falls()
    {
        var dll = BuildInfo.ProgramOf("samples/GroupedMlpSample", "Orchestrator.GroupedMlpSample.dll");
        int seed = Random.Shared.Next();
        var run = await ChildProcess.RunAsync("dotnet", [dll, seed.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromMinutes(5));
        Assert.True(run.ExitCode == 0, $"the sample exited {run.ExitCode} (seed {seed}):\n{run.Output}");

        var losses = LossLine().Matches(run.Output)
            .Select(m => (Step: int.Parse(m.Groups[1].Value), Loss: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .ToList();
        Assert.Equal([0, 50, 100, 150, 200, 250, 300], losses.Select(l => l.Step));
        Assert.All(losses, l => Assert.True(double.IsFinite(l.Loss) && l.Loss > 0, $"step {l.Step} loss {l.Loss} (seed {seed})"));
        // Targets have unit variance and the untrained student's outputs are uncorrelated with them, so the first loss is
        // about 1 plus the student's own output variance: 0.81 to 2.96 over 90 seeds tried.
        Assert.InRange(losses[0].Loss, 0.5, 10.0);
        Assert.True(losses[^1].Loss < 0.1 * losses[0].Loss, $"the loss went from {losses[0].Loss} to {losses[^1].Loss} (seed {seed}):\n{run.Output}");
    }

    [Fact]
    public async Task The_sample_refuses_an_argument_that_is_not_a_seed()
    {
        var dll = BuildInfo.ProgramOf("samples/GroupedMlpSample", "Orchestrator.GroupedMlpSample.dll");
        var run = await ChildProcess.RunAsync("dotnet", [dll, "many"], TimeSpan.FromMinutes(2));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("'many' is not one integer seed", run.Output);
    }

    [Fact]
    public void The_sample_ships_linux_x64_natives_only() =>
        ShippedFiles.AssertLinuxOnly(BuildInfo.ProgramOf("samples/GroupedMlpSample", "Orchestrator.GroupedMlpSample.dll"));
}
