using Orchestrator.Client.Commands;
using Orchestrator.Connection;
using Orchestrator.Grains;
using Orchestrator.Grains.Hosting;
using Orchestrator.Training;
using static TorchSharp.torch;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// Two silo processes that talk (to each other and to clients) only over mutual TLS: clients with a certificate of the
/// cluster's CA train; clients without TLS, with a certificate of another CA or with none are refused.
/// </summary>
[Collection(TlsClusterCollection.Name)]
public class TlsClusterTests(TlsClusterFixture fixture)
{
    /// <summary>Generous: a refused client retries until its connect timeout, and the bound only guards against a hang.</summary>
    static readonly TimeSpan Hang = TimeSpan.FromSeconds(120);

    ClusterConnectionOptions Options(ClusterTlsOptions tls, int connectTimeoutSeconds = 30)
    {
        var options = fixture.Silos.ClientOptions();
        options.Tls = tls;
        options.ConnectTimeoutSeconds = connectTimeoutSeconds;
        return options;
    }

    static async Task<TimeoutException> Refused(ClusterConnectionOptions options) =>
        await Assert.ThrowsAsync<TimeoutException>(() => ClusterConnection.ConnectAsync(options, verbose: false).WaitAsync(Hang));

    [Fact]
    public async Task A_client_with_a_certificate_of_the_cluster_CA_sees_both_silos_and_trains_a_job()
    {
        await using var connection = await ClusterConnection.ConnectAsync(Options(fixture.ClientTls(fixture.Authority, "client")), verbose: false);
        // Both silos' devices: silo-1 joined silo-0 and their metadata travelled between them, silo to silo over TLS.
        var devices = await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetDevicesAsync();
        Assert.Equal(["silo-0/cpu", "silo-1/cpu"], devices.Select(d => d.ToString()).Order());

        var spec = new JobSpec
        {
            Name = $"tls-{Guid.NewGuid():N}",
            Shape = new ModelShape { Groups = 4, Features = 8, Input = 8, Hidden = 16, Output = 4 },
            BatchSize = 32,
            DType = ScalarType.Float32,
            Steps = 5,
        };
        var coordinator = connection.Grains.GetGrain<ICoordinatorGrain>(spec.Name);
        try
        {
            await coordinator.StartAsync(spec);
            for (int i = 0; i < spec.Steps; i++) Assert.True(double.IsFinite((await coordinator.StepAsync()).Loss));
            var status = await coordinator.GetStatusAsync();
            Assert.Equal((JobState.Finished, 5L), (status.State, status.StepsDone));
        }
        finally
        {
            await coordinator.StopAsync();
        }
    }

    [Fact]
    public async Task The_CLI_trains_with_a_PEM_certificate_whose_encrypted_key_password_comes_from_the_environment()
    {
        const string keyPassword = "pem-key-password";
        var (certificate, key) = fixture.Authority.WritePem(fixture.Authority.Issue("cli", serverAuth: false), "cli", keyPassword);
        await using var cli = ChildProcess.Start("orchestrator", "dotnet",
            [Build.ClientDll, "train", "--cluster-id", fixture.Silos.ClusterId, "--name", $"cli-{Guid.NewGuid():N}", "--steps", "5",
             "--groups", "4", "--features", "8", "--input", "8", "--hidden", "16", "--output", "4", "--batch-size", "32",
             "--tls-certificate", certificate, "--tls-key", key, "--tls-ca", fixture.Authority.AuthorityFile],
            new Dictionary<string, string> { [ConnectionSettings.RedisVariable] = fixture.Silos.Redis, [ConnectionSettings.TlsPasswordVariable] = keyPassword });
        Assert.True(await cli.WaitForExitAsync(Hang), cli.Output);
        Assert.True(cli.ExitCode == 0, $"exit code {cli.ExitCode}:\n{cli.Output}");
        Assert.Contains("on cluster via Redis 127.0.0.1:", cli.Output);
        Assert.DoesNotContain(keyPassword, cli.Output);
    }

    [Fact]
    public async Task A_client_that_pins_the_silos_certificate_by_its_SHA256_fingerprint_connects()
    {
        var tls = fixture.ClientTls(fixture.Authority, "pinning-client");
        tls.TrustedCA = null;
        // As `openssl x509 -noout -fingerprint -sha256` prints it: colon-separated pairs.
        var hash = fixture.SiloCertificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
        tls.TrustedThumbprints = [string.Join(":", hash.Chunk(2).Select(pair => new string(pair)))];
        await using var connection = await ClusterConnection.ConnectAsync(Options(tls), verbose: false);
        Assert.Equal(2, (await connection.Grains.GetGrain<IClusterGrain>(IClusterGrain.Key).GetDevicesAsync()).Length);
    }

    [Fact]
    public async Task A_client_without_TLS_fails_within_its_connect_timeout_and_is_told_the_cluster_may_use_TLS()
    {
        var error = await Refused(Options(new ClusterTlsOptions(), connectTimeoutSeconds: 5));
        Assert.Contains($"no gateway of cluster '{fixture.Silos.ClusterId}'", error.Message);
        Assert.Contains("within 5 s", error.Message);
        Assert.Contains("If the cluster uses TLS (Cluster:Tls), give this client a certificate the silos trust", error.Message);
    }

    [Fact]
    public async Task A_client_whose_certificate_another_CA_issued_is_refused_and_the_silos_say_why()
    {
        var error = await Refused(Options(fixture.ClientTls(fixture.Intruders, "intruder"), connectTimeoutSeconds: 5));
        Assert.Contains("This client uses TLS: do the silos trust its certificate", error.Message);
        await fixture.Silos.Silos[0].WaitUntilAsync(
            output => output.Contains("TLS peer refused: the certificate 'CN=intruder'") && output.Contains("does not chain to Cluster:Tls:TrustedCA"),
            TimeSpan.FromSeconds(30), "log line naming the refused certificate");
    }

    [Fact]
    public async Task A_client_without_a_certificate_is_refused_under_mutual_TLS()
    {
        var tls = new ClusterTlsOptions { Enabled = true, RequireClientCertificate = false, TrustedCA = fixture.Authority.AuthorityFile };
        await Refused(Options(tls, connectTimeoutSeconds: 5));
    }

    [Fact]
    public async Task A_client_that_does_not_trust_the_silos_CA_refuses_them()
    {
        var tls = fixture.ClientTls(fixture.Authority, "suspicious-client");
        tls.TrustedCA = fixture.Intruders.AuthorityFile;
        await Refused(Options(tls, connectTimeoutSeconds: 5));
    }
}
