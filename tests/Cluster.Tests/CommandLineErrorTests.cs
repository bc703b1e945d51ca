using System.Diagnostics;

namespace Orchestrator.Cluster.Tests;

/// <summary>Mistakes on the command line, and a cluster that is not there, are reported at once in the user's words.</summary>
public class CommandLineErrorTests
{
    static async Task<ChildProcess> Run(params string[] arguments)
    {
        var cli = ChildProcess.Start("orchestrator", "dotnet", [Build.ClientDll, .. arguments]);
        Assert.True(await cli.WaitForExitAsync(TimeSpan.FromSeconds(90)), cli.Output);
        return cli;
    }

    [Theory]
    [InlineData("--steps 99999999999", "--steps 99999999999: '99999999999' is too large: the most this option takes is 2,147,483,647.")]
    [InlineData("--groups 1e9", "--groups 1e9: '1e9' is not a whole number.")]
    [InlineData("--connect-timeout -1", "--connect-timeout must be 1 to 3600 seconds; got -1.")]
    [InlineData("--stpes 10", "Unknown option")]
    [InlineData("--loss hinge", "--loss hinge: 'hinge' is not one of mse, bce.")]
    [InlineData("--loss 1", "--loss 1: '1' is not one of mse, bce.")]
    [InlineData("--dtype f8", "--dtype f8: 'f8' is not a dtype; use one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64).")]
    [InlineData("--transport tcp", "--transport tcp: 'tcp' is not one of auto, message, channel, process, ipc.")]
    [InlineData("--transport=message,channel", "--transport message,channel: 'message,channel' is not one of auto, message, channel, process, ipc.")]
    public async Task A_bad_option_value_is_named_with_what_is_wrong(string arguments, string message)
    {
        await using var cli = await Run(["train", .. arguments.Split(' ')]);
        Assert.NotEqual(0, cli.ExitCode);
        Assert.Contains(message, cli.Output.ReplaceLineEndings(" "));
        Assert.DoesNotContain("Nullable", cli.Output);
        Assert.DoesNotContain("Parameter '", cli.Output);
    }

    [Fact]
    public async Task Status_with_nothing_on_the_gateway_port_fails_well_before_the_connect_timeout()
    {
        var watch = Stopwatch.StartNew();
        await using var cli = await Run("status", "--gateway", $"127.0.0.1:{RedisServer.FreePort()}");   // the default timeout: 30 s
        Assert.NotEqual(0, cli.ExitCode);
        Assert.Contains("nothing listens on 127.0.0.1:", cli.Output);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"took {watch.Elapsed}, as long as the 30 s connect timeout");
    }

    [Fact]
    public async Task Version_names_the_build_commit_TorchSharp_and_libtorch()
    {
        await using var cli = await Run("--version");
        Assert.Equal(0, cli.ExitCode);
        foreach (var line in new[] { "orchestrator ", "commit ", "TorchSharp 0.107", "libtorch 2." }) Assert.Contains(line, cli.Output);
    }
}
