using System.Diagnostics;
using Orchestrator.Connection;
using Orchestrator.Grains.Hosting;

namespace Orchestrator.Cluster.Tests;

/// <summary>Bad cluster configuration stops a silo (exit code 2) or a client quickly, with one line that says what to fix.</summary>
public class ConfigurationErrorTests
{
    /// <summary>A cluster secret, for silos that must get past it to the error under test.</summary>
    static readonly Dictionary<string, string> WithSecret =
        new() { ["Cluster__Secret"] = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) };

    static async Task<(int ExitCode, string Output, TimeSpan Took)> RunSilo(IDictionary<string, string>? environment, params string[] arguments)
    {
        var watch = Stopwatch.StartNew();
        await using var silo = ChildProcess.Start("silo", "dotnet", [Build.SiloDll, "--silo-port", $"{RedisServer.FreePort()}",
            "--gateway-port", $"{RedisServer.FreePort()}", "--advertised-ip", "127.0.0.1", .. arguments], environment);
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"the silo kept running:\n{silo.Output}");
        return (silo.ExitCode, silo.Output, watch.Elapsed);
    }

    [Fact]
    public async Task An_unknown_membership_is_rejected()
    {
        var (code, output, _) = await RunSilo(null, "--membership", "zookeeper");
        Assert.Equal(2, code);
        Assert.Contains("Cluster:Membership 'zookeeper' is not supported; use 'localhost' or 'redis'", output);
    }

    [Fact]
    public async Task Redis_membership_without_a_connection_string_is_rejected()
    {
        var (code, output, _) = await RunSilo(new Dictionary<string, string> { ["Cluster__Redis"] = "" }, "--membership", "redis");
        Assert.Equal(2, code);
        Assert.Contains("no Redis connection string is set: give Cluster:Redis", output);
    }

    [Fact]
    public async Task Redis_membership_without_a_cluster_secret_is_rejected_saying_how_to_make_one()
    {
        var (code, output, _) = await RunSilo(new Dictionary<string, string> { ["Cluster__Secret"] = "" }, "--membership", "redis",
            "--redis", $"127.0.0.1:{RedisServer.FreePort()}");
        Assert.Equal(2, code);
        Assert.Contains("Cluster:Membership is 'redis' but no Cluster:Secret is set", output);
        Assert.Contains("openssl rand -hex 32", output);
    }

    [Fact]
    public async Task A_silo_gives_up_on_an_unreachable_Redis_within_its_connect_timeout()
    {
        int nobody = RedisServer.FreePort();   // nothing listens there
        var (code, output, took) = await RunSilo(WithSecret, "--membership", "redis", "--redis", $"127.0.0.1:{nobody},password=secret",
            "--Cluster:RedisConnectTimeoutSeconds", "3");
        Assert.Equal(2, code);
        Assert.Contains($"cannot connect to Redis at 127.0.0.1:{nobody} within 3 s", output);
        Assert.DoesNotContain("secret", output);
        Assert.True(took < TimeSpan.FromSeconds(45), $"took {took}");
    }

    [Fact]
    public async Task A_client_gives_up_on_an_unreachable_Redis_within_its_connect_timeout()
    {
        var options = new ClusterConnectionOptions
        {
            Membership = "redis", Redis = $"127.0.0.1:{RedisServer.FreePort()}", RedisConnectTimeoutSeconds = 3, ClusterId = "nobody",
        };
        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => ClusterConnection.ConnectAsync(options, verbose: false).WaitAsync(TimeSpan.FromSeconds(60)));
        var all = string.Join(" | ", Flatten(error).Select(e => $"{e.GetType().Name}: {e.Message}"));
        Assert.Contains(Flatten(error), e => e is RedisUnreachableException);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45), $"took {watch.Elapsed}: {all}");
    }

    [Fact]
    public async Task A_silo_gives_up_on_a_Redis_that_accepts_but_never_answers_within_its_connect_timeout()
    {
        // A listener that takes connections and says nothing: the handshake hangs, only the timeout ends it.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var held = new List<System.Net.Sockets.Socket>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true) held.Add(await silent.AcceptSocketAsync(stop.Token));
            }
            catch (OperationCanceledException)
            {
            }
        });
        int port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
        try
        {
            var (code, output, took) = await RunSilo(WithSecret, "--membership", "redis", "--redis", $"127.0.0.1:{port}",
                "--Cluster:RedisConnectTimeoutSeconds", "3");
            Assert.Equal(2, code);
            Assert.Contains($"cannot connect to Redis at 127.0.0.1:{port} within 3 s", output);
            Assert.True(took < TimeSpan.FromSeconds(45), $"took {took}");
        }
        finally
        {
            stop.Cancel();
            await accepting;
            foreach (var socket in held) socket.Dispose();
        }
    }

    [Fact]
    public async Task A_silo_whose_TLS_certificate_does_not_open_with_its_password_is_rejected_without_showing_it()
    {
        using var certificates = new TestCertificates("config-ca");
        var tls = new ClusterTlsOptions
        {
            Enabled = true,
            Certificate = certificates.WritePfx(certificates.Issue("silo"), "silo.pfx"),
            Password = "wrong-password",
            TrustedCA = certificates.AuthorityFile,
        };
        var (code, output, _) = await RunSilo(tls.ToEnvironment());
        Assert.Equal(2, code);
        Assert.Contains($"orchestrator silo: Cluster:Tls:Certificate (--tls-certificate): cannot open '{tls.Certificate}' as a PFX (PKCS#12) file with the password in Cluster:Tls:Password ($ORCHESTRATOR_TLS_PASSWORD)", output);
        Assert.DoesNotContain("wrong-password", output);
    }

    [Fact]
    public void A_malformed_or_missing_Redis_setting_is_rejected_before_anything_starts()
    {
        Assert.Contains("no Redis connection string", Assert.Throws<ArgumentException>(() => new ClusterConnectionOptions { Membership = "redis" }.RedisSettings()).Message);
        Assert.Contains("names no Redis endpoint", Assert.Throws<ArgumentException>(() => new ClusterConnectionOptions { Membership = "redis", Redis = "password=x" }.RedisSettings()).Message);
        Assert.Contains("is not supported", Assert.Throws<ArgumentException>(() => new ClusterConnectionOptions { Membership = "etcd" }.UsesRedis).Message);
        Assert.True(new ClusterConnectionOptions { Membership = "Redis" }.UsesRedis);
    }

    static IEnumerable<Exception> Flatten(Exception e) => e switch
    {
        AggregateException a => a.InnerExceptions.SelectMany(Flatten).Prepend(a),
        { InnerException: { } inner } => Flatten(inner).Prepend(e),
        _ => [e],
    };
}
