namespace Orchestrator.Cluster.Tests;

/// <summary>Every --help renders (Spectre markup in an option's description would break it) and names the Redis and TLS options.</summary>
public class CommandLineHelpTests
{
    static async Task<string> Help(string dll, params string[] command)
    {
        await using var process = ChildProcess.Start("help", "dotnet", [dll, .. command, "--help"]);
        Assert.True(await process.WaitForExitAsync(TimeSpan.FromSeconds(60)), process.Output);
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}:\n{process.Output}");
        Assert.DoesNotContain("Error:", process.Output);
        return process.Output;
    }

    [Theory]
    [InlineData("train")]
    [InlineData("status")]
    public async Task Client_commands_explain_redis_membership_and_TLS(string command)
    {
        var help = await Help(Build.ClientDll, command);
        foreach (var option in new[] { "--redis <CONNECTION>", "--tls-certificate <FILE>", "--tls-key <FILE>", "--tls-ca <FILE>", "--tls-thumbprint" })
            Assert.Contains(option, help);
        // Descriptions wrap at the console's width, inside words too.
        Assert.Contains("$ORCHESTRATOR_TLS_PASSWORD,neveranoption", string.Concat(help.Where(c => !char.IsWhiteSpace(c))));
    }

    [Fact]
    public async Task The_silo_lists_its_membership_address_and_observability_options()
    {
        var help = await Help(Build.SiloDll);
        foreach (var option in new[] { "--membership", "--redis", "--advertised-ip", "--listen-any", "--dashboard-port", "--data-channel-port", "--log-file" })
            Assert.Contains(option, help);
        Assert.Contains("Cluster__Tls__Certificate", help);
    }

    [Fact]
    public async Task The_top_level_help_lists_version()
    {
        var help = await Help(Build.ClientDll);
        Assert.Contains(help.Split('\n'), line => line.Contains("--version") && line.Contains("Prints version information"));
    }

    [Fact]
    public async Task The_silo_help_lists_version() =>
        Assert.Contains(Lines(await Help(Build.SiloDll)), line => line.StartsWith("--version") && line.Contains("TorchSharp and libtorch"));

    /// <summary>Redirected output has no terminal: help is laid out at a wide default, not squeezed into 80 columns.</summary>
    [Fact]
    public async Task Redirected_help_keeps_a_description_longer_than_80_columns_on_one_line()
    {
        var line = Lines(await Help(Build.ClientDll, "train")).Single(l => l.StartsWith("-v, --verbose", StringComparison.Ordinal));
        Assert.True(line.Length > 80, line);
        Assert.EndsWith("Log Orleans and grain activity (information level) to the console", line);
    }

    static string[] Lines(string output) => output.Split('\n', StringSplitOptions.TrimEntries);
}
