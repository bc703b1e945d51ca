namespace Orchestrator.Cluster.Tests;

/// <summary>
/// The silo host's command line, on real silo processes: an option it does not know stops it before anything starts
/// (exit code 2, the nearest known option named), and a silo that starts says so in one line, with its settings taken
/// from appsettings.json, then the environment, then the command line.
/// </summary>
public class SiloCommandLineTests
{
    static async Task<(int ExitCode, string Output)> RunSilo(params string[] arguments)
    {
        await using var silo = ChildProcess.Start("silo", "dotnet", [Build.SiloDll, .. arguments]);
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"the silo kept running:\n{silo.Output}");
        return (silo.ExitCode, silo.Output);
    }

    [Theory]
    [InlineData("--devcies", "cuda:0", "unknown option '--devcies'; did you mean '--devices'?")]
    [InlineData("--gateway-prot", "30000", "unknown option '--gateway-prot'; did you mean '--gateway-port'?")]
    [InlineData("--Silo:MaxJobMemroyMB", "16", "unknown option '--Silo:MaxJobMemroyMB'; did you mean '--Silo:MaxJobMemoryMB'?")]
    [InlineData("--Cluster:Tls:Enabeld", "true", "unknown option '--Cluster:Tls:Enabeld'; did you mean '--Cluster:Tls:Enabled'?")]
    [InlineData("--frobnicate", "1", "unknown option '--frobnicate' (--help lists the options).")]
    public async Task An_unknown_option_stops_the_silo_before_it_starts_naming_the_nearest_known_one(string option, string value, string error)
    {
        var (code, output) = await RunSilo("--silo-port", $"{RedisServer.FreePort()}", option, value);
        Assert.Equal(2, code);
        Assert.Contains($"orchestrator silo: {error}", output);
        Assert.DoesNotContain(" ready: ", output);
    }

    [Theory]
    [InlineData("--silo-port", "abc", "--silo-port (Silo:SiloPort) must be a whole number from -2147483648 to 2147483647; got 'abc'.")]
    [InlineData("--max-message-mb", "99999999999", "--max-message-mb (Cluster:MaxMessageMB) must be a whole number from -2147483648 to 2147483647; got '99999999999'.")]
    [InlineData("--listen-any", "maybe", "--listen-any (Silo:ListenOnAnyAddress) must be true or false; got 'maybe'.")]
    [InlineData("--Silo:MaxJobMemoryMB", "1.5", "Silo:MaxJobMemoryMB must be a whole number from -9223372036854775808 to 9223372036854775807; got '1.5'.")]
    public async Task A_value_a_setting_cannot_take_stops_the_silo_saying_what_it_takes(string option, string value, string error)
    {
        var (code, output) = await RunSilo(option, value);
        Assert.Equal(2, code);
        Assert.Contains($"orchestrator silo: {error}", output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotContain(" ready: ", output);
    }

    [Fact]
    public async Task An_option_without_its_value_or_a_stray_argument_stops_the_silo()
    {
        var (code, output) = await RunSilo("--devices", "--name", "a");
        Assert.Equal(2, code);
        Assert.Contains("orchestrator silo: option '--devices' needs a value (Silo:Devices).", output);

        (code, output) = await RunSilo("cuda:0");
        Assert.Equal(2, code);
        Assert.Contains("orchestrator silo: unexpected argument 'cuda:0'", output);
    }

    [Fact]
    public async Task A_started_silo_prints_one_ready_line_with_the_command_line_over_the_environment_over_appsettings()
    {
        int siloPort = RedisServer.FreePort(), gatewayPort = RedisServer.FreePort();
        string name = $"ready-{Guid.NewGuid():N}"[..14];
        var environment = new Dictionary<string, string>
        {
            ["Silo__Name"] = "from-the-environment",                 // the command line wins
            ["Silo__GatewayPort"] = $"{gatewayPort}",                // over appsettings.json's 30000
            ["Cluster__PrimarySiloPort"] = $"{siloPort}",            // this silo is the primary
        };
        await using var silo = ChildProcess.Start("silo", "dotnet",
            [Build.SiloDll, "--name", name, "--silo-port", $"{siloPort}", "--Silo:Devices=cpu"], environment);
        await silo.WaitUntilAsync(output => output.Contains(" ready: "), TimeSpan.FromSeconds(90), "ready line");

        var ready = silo.Output.Split('\n').Select(line => line.TrimEnd('\r')).Where(line => line.Contains(" ready: ")).ToList();
        Assert.Equal(
            [$"orchestrator silo {name} ready: silo 127.0.0.1:{siloPort}, gateway 127.0.0.1:{gatewayPort}, devices cpu, membership localhost (primary silo port {siloPort})"],
            ready);
        await silo.StopAsync(TimeSpan.FromSeconds(30));
        Assert.True(silo.ExitCode == 0, $"exit code {silo.ExitCode}:\n{silo.Output}");
    }
}
