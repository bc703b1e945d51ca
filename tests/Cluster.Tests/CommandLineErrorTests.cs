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
    [InlineData("--steps 99999999999", "--steps must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("--groups 1e9", "--groups must be a whole number from -2147483648 to 2147483647; got '1e9'.")]
    [InlineData("--connect-timeout -1", "--connect-timeout must be 1 to 3600 seconds; got -1.")]
    [InlineData("--stpes 10", "Unknown option")]
    [InlineData("--loss hinge", "--loss hinge: 'hinge' is not one of mse, bce.")]
    [InlineData("--loss 1", "--loss 1: '1' is not one of mse, bce.")]
    [InlineData("--dtype f8", "--dtype f8: 'f8' is not a dtype; use one of bfloat16 (bf16), float16 (f16), float32 (f32), float64 (f64).")]
    [InlineData("--transport tcp", "--transport tcp: 'tcp' is not one of auto, message, channel, process, ipc.")]
    [InlineData("--transport=message,channel", "--transport message,channel: 'message,channel' is not one of auto, message, channel, process, ipc.")]
    public Task A_bad_option_value_is_named_with_what_is_wrong(string arguments, string message) => Refused("train " + arguments, message);

    /// <summary>The command line fails with <paramref name="message"/>, in words, not .NET's conversion messages.</summary>
    static async Task Refused(string arguments, string message)
    {
        await using var cli = await Run(arguments.Split(' '));
        Assert.NotEqual(0, cli.ExitCode);
        Assert.Contains(message, cli.Output.ReplaceLineEndings(" "));
        foreach (var dotnet in new[] { "Nullable", "Parameter '", "is not a valid value for" }) Assert.DoesNotContain(dotnet, cli.Output);
    }

    /// <summary>Every number option of every command, int, long or double, refuses a bad value in one form of words.</summary>
    [Theory]
    [InlineData("train --local-silos 99999999999", "--local-silos must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("train --local-processes two", "--local-processes must be a whole number from -2147483648 to 2147483647; got 'two'.")]
    [InlineData("train --connect-timeout 1.5", "--connect-timeout must be a whole number from -2147483648 to 2147483647; got '1.5'.")]
    [InlineData("train --max-message-mb 1e3", "--max-message-mb must be a whole number from -2147483648 to 2147483647; got '1e3'.")]
    [InlineData("train --seed 1.5", "--seed must be a whole number from -9223372036854775808 to 9223372036854775807; got '1.5'.")]
    [InlineData("train --data-seed=1.5", "--data-seed must be a whole number from -9223372036854775808 to 9223372036854775807; got '1.5'.")]
    [InlineData("train --teacher-seed 99999999999999999999", "--teacher-seed must be a whole number from -9223372036854775808 to 9223372036854775807; got '99999999999999999999'.")]
    [InlineData("train --lr abc", "--lr must be a number such as 0.01 or 1e-3; got 'abc'.")]
    [InlineData("train --val-fraction x", "--val-fraction must be a number such as 0.01 or 1e-3; got 'x'.")]
    [InlineData("train --clip-norm NaN", "--clip-norm must be a number such as 0.01 or 1e-3; got 'NaN'.")]
    [InlineData("bench-step --steps 99999999999", "--steps must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("bench-step --warmup 2.5", "--warmup must be a whole number from -2147483648 to 2147483647; got '2.5'.")]
    [InlineData("bench-step --batch-size 1k", "--batch-size must be a whole number from -2147483648 to 2147483647; got '1k'.")]
    [InlineData("bench-scaling --steps x", "--steps must be a whole number from -2147483648 to 2147483647; got 'x'.")]
    [InlineData("bench-scaling --shared-workers 99999999999", "--shared-workers must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("bench --reps many", "--reps must be a whole number from -2147483648 to 2147483647; got 'many'.")]
    [InlineData("bench --batch-size 1.5", "--batch-size must be a whole number from -9223372036854775808 to 9223372036854775807; got '1.5'.")]
    [InlineData("bench-transport --reps 99999999999", "--reps must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("predict --batch-size 99999999999", "--batch-size must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("status --connect-timeout soon", "--connect-timeout must be a whole number from -2147483648 to 2147483647; got 'soon'.")]
    public Task Every_command_names_a_bad_number_and_what_the_option_takes(string arguments, string message) => Refused(arguments, message);

    /// <summary>
    /// The benchmarks' option names, short forms and older spellings are options they know: a bad value for each is
    /// refused by its converter under the name given (an unknown name would be "Unknown option"), with no GPU needed.
    /// </summary>
    [Theory]
    [InlineData("bench", "-b")]
    [InlineData("bench", "--batch-size")]
    [InlineData("bench", "--batch")]
    [InlineData("bench", "--input")]
    [InlineData("bench", "--input-dim")]
    [InlineData("bench", "--hidden")]
    [InlineData("bench", "--hidden-dim")]
    [InlineData("bench", "--output")]
    [InlineData("bench", "--mlp-output-dim")]
    [InlineData("bench", "--linear-output")]
    [InlineData("bench", "--output-dim")]
    [InlineData("bench", "--warmup")]
    [InlineData("bench-step", "-b")]
    [InlineData("bench-step", "--batch-size")]
    [InlineData("bench-step", "--input")]
    [InlineData("bench-step", "--warmup")]
    [InlineData("bench-scaling", "-b")]
    [InlineData("bench-transport", "--warmup")]
    [InlineData("bench-transport", "--warm-ups")]
    public Task The_benchmarks_take_the_shared_option_names_and_the_older_spellings(string command, string option) =>
        Refused($"{command} {option} x", $"{option} must be a whole number");

    [Fact]
    public async Task Bench_steps_transport_takes_every_transport_its_help_lists()
    {
        await using var cli = await Run("bench-step", "--transport", "tcp");
        Assert.Contains("--transport tcp: 'tcp' is not one of auto, message, channel, process, ipc.", cli.Output);
        await using var help = await Run("bench-step", "--help");
        Assert.Contains("auto (CUDA IPC on a GPU), message, channel, process (reaches only silos of the coordinator's process) or ipc",
            string.Join(' ', help.Output.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)));   // the description may wrap
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

    [Theory]
    [InlineData("--version")]
    [InlineData("-v")]
    public async Task Version_names_the_build_commit_TorchSharp_and_libtorch(string option)
    {
        await using var cli = await Run(option);
        Assert.Equal(0, cli.ExitCode);
        foreach (var line in new[] { "orchestrator ", "commit ", "TorchSharp 0.107", "libtorch 2." }) Assert.Contains(line, cli.Output);
    }

    [Fact]
    public async Task The_silo_reports_the_same_version_as_the_client()
    {
        await using var client = await Run("--version");
        await using var silo = ChildProcess.Start("silo", "dotnet", [Build.SiloDll, "--version"]);
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(90)), silo.Output);
        Assert.Equal(0, silo.ExitCode);
        Assert.StartsWith("orchestrator silo ", silo.Output.TrimStart());
        // Line for line the same but the program's name: one build, one commit, the same TorchSharp and libtorch.
        Assert.Equal(Lines(client.Output).Skip(1), Lines(silo.Output).Skip(1));
        Assert.Equal(Lines(client.Output)[0]["orchestrator".Length..], Lines(silo.Output)[0]["orchestrator silo".Length..]);
    }

    static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
