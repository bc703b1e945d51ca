using Orchestrator.Grains.Hosting;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// Two silo processes joined through Redis with mutual TLS: a test CA ("cluster-ca") issued the silos' certificate
/// (one PFX both use, password by environment) and a client certificate; a second CA ("intruder-ca") that nobody
/// trusts issued another client certificate.
/// </summary>
public sealed class TlsClusterFixture : IAsyncLifetime
{
    SiloProcesses? silos;

    public RedisServer Redis { get; } = new();
    public TestCertificates Authority { get; } = new("cluster-ca");
    public TestCertificates Intruders { get; } = new("intruder-ca");
    public SiloProcesses Silos => silos ?? throw new InvalidOperationException("the TLS cluster did not start.");
    /// <summary>The silos' certificate, for tests that pin it.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2 SiloCertificate { get; }

    public TlsClusterFixture() => SiloCertificate = Authority.Issue("silo");

    public async Task InitializeAsync()
    {
        await Redis.InitializeAsync();
        var tls = new ClusterTlsOptions
        {
            Enabled = true,
            Certificate = Authority.WritePfx(SiloCertificate, "silo.pfx"),
            Password = TestCertificates.Password,
            TrustedCA = Authority.AuthorityFile,
        };
        silos = await SiloProcesses.StartAsync(Redis.ConnectionString, 2, tls: tls);
    }

    /// <summary>Client settings of the cluster's clients: a certificate of <paramref name="issuer"/> and the cluster's CA to check the silos with.</summary>
    public ClusterTlsOptions ClientTls(TestCertificates issuer, string name) => new()
    {
        Enabled = true,
        Certificate = issuer.WritePfx(issuer.Issue(name, serverAuth: false), $"{name}.pfx"),
        Password = TestCertificates.Password,
        TrustedCA = Authority.AuthorityFile,
    };

    public async Task DisposeAsync()
    {
        if (silos is not null) await silos.DisposeAsync();
        await Redis.DisposeAsync();
        Authority.Dispose();
        Intruders.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class TlsClusterCollection : ICollectionFixture<TlsClusterFixture>
{
    public const string Name = "tls cluster";
}
