namespace Orchestrator.Cluster.Tests;

/// <summary>`train` without a cluster secures its embedded silo and the silo processes it starts with its own --tls options.</summary>
public class TlsLocalClusterTests
{
    [Fact]
    public async Task Train_with_a_local_silo_process_runs_the_embedded_silo_and_the_process_over_TLS()
    {
        using var certificates = new TestCertificates("local-ca");
        var pfx = certificates.WritePfx(certificates.Issue("local-silo"), "local-silo.pfx");
        await using var cli = ChildProcess.Start("orchestrator", "dotnet",
            [Build.ClientDll, "train", "--local-processes", "1", "--steps", "5", "--groups", "4", "--features", "8", "--input", "8",
             "--hidden", "16", "--output", "4", "--batch-size", "32", "--tls-certificate", pfx, "--tls-ca", certificates.AuthorityFile],
            new Dictionary<string, string> { [Client.Commands.ConnectionSettings.TlsPasswordVariable] = TestCertificates.Password });
        Assert.True(await cli.WaitForExitAsync(TimeSpan.FromSeconds(180)), cli.Output);
        Assert.True(cli.ExitCode == 0, $"exit code {cli.ExitCode}:\n{cli.Output}");
        Assert.Contains("on embedded silo and 1 silo processes", cli.Output.ReplaceLineEndings(" "));
    }
}
