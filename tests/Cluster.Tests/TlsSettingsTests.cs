using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Orchestrator.Grains.Hosting;
using Orleans.Connections.Security;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// Cluster:Tls is checked before anything starts, with errors naming the setting; and the trust it configures accepts
/// exactly the peers it should.
/// </summary>
public sealed class TlsSettingsTests : IDisposable
{
    readonly TestCertificates authority = new("settings-ca");
    readonly TestCertificates other = new("other-ca");

    public void Dispose()
    {
        authority.Dispose();
        other.Dispose();
    }

    ClusterTlsOptions Silo(X509Certificate2 certificate) => new()
    {
        Enabled = true,
        Certificate = authority.WritePfx(certificate, $"{Guid.NewGuid():N}.pfx"),
        Password = TestCertificates.Password,
        TrustedCA = authority.AuthorityFile,
    };

    ClusterTlsOptions Silo() => Silo(authority.Issue("silo"));

    static string SiloError(ClusterTlsOptions tls) => Assert.Throws<ArgumentException>(() => tls.SiloSettings()).Message;

    static TlsOptions Applied(Action<TlsOptions>? configure)
    {
        var tls = new TlsOptions();
        (configure ?? throw new InvalidOperationException("TLS is off"))(tls);
        return tls;
    }

    static RemoteCertificateValidator Validator(ClusterTlsOptions tls) =>
        Applied(tls.ClientSettings()).RemoteCertificateValidation ?? throw new InvalidOperationException("no peer validation");

    static string Refusal(RemoteCertificateValidator validate, X509Certificate2 peer) =>
        Assert.Throws<AuthenticationException>(() => validate(peer, null, SslPolicyErrors.None)).Message;

    [Fact]
    public void TLS_is_off_by_default()
    {
        var tls = new ClusterConnectionOptions().Tls;
        Assert.False(tls.Enabled);
        Assert.Null(tls.SiloSettings());
        Assert.Null(tls.ClientSettings());
    }

    [Fact]
    public void Settings_bind_from_the_Cluster_Tls_section_and_from_the_environment_a_client_gives_its_silo_processes()
    {
        var tls = Silo();
        tls.RequireClientCertificate = false;
        tls.TrustedThumbprints = ["AB:CD", "EF"];
        // Cluster__Tls__X as the environment provider reads it: "__" is the section separator.
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(tls.ToEnvironment().Select(e => KeyValuePair.Create(e.Key.Replace("__", ":"), (string?)e.Value)))
            .Build();
        var bound = configuration.GetSection(ClusterConnectionOptions.Section).Get<ClusterConnectionOptions>()?.Tls;
        Assert.NotNull(bound);
        Assert.Equal((true, false, tls.Certificate, TestCertificates.Password, tls.TrustedCA),
            (bound.Enabled, bound.RequireClientCertificate, bound.Certificate, bound.Password, bound.TrustedCA));
        Assert.Equal(["AB:CD", "EF"], bound.TrustedThumbprints);
    }

    [Fact]
    public void A_silo_presents_its_certificate_and_requires_one_from_every_peer_under_mutual_TLS()
    {
        var applied = Applied(Silo().SiloSettings());
        Assert.Equal("CN=silo", applied.LocalCertificate?.Subject);
        Assert.Equal((RemoteCertificateMode.RequireCertificate, RemoteCertificateMode.RequireCertificate), (applied.RemoteCertificateMode, applied.ClientCertificateMode));
        var lenient = Silo();
        lenient.RequireClientCertificate = false;
        Assert.Equal(RemoteCertificateMode.AllowCertificate, Applied(lenient.SiloSettings()).RemoteCertificateMode);
    }

    [Fact]
    public void TLS_settings_while_TLS_is_off_are_refused_so_a_cluster_never_runs_plain_by_oversight()
    {
        var tls = Silo();
        tls.Enabled = false;
        var message = SiloError(tls);
        Assert.Contains("Cluster:Tls:Certificate (--tls-certificate) and Cluster:Tls:TrustedCA (--tls-ca) are set but Cluster:Tls:Enabled is not true", message);
        Assert.Contains("Cluster__Tls__Enabled=true", message);
        Assert.Contains("is set but Cluster:Tls:Enabled", Assert.Throws<ArgumentException>(() => new ClusterTlsOptions { TrustedThumbprints = ["AB"] }.ClientSettings()).Message);
    }

    [Fact]
    public void A_silo_needs_a_certificate_and_a_client_needs_one_only_under_mutual_TLS()
    {
        var tls = new ClusterTlsOptions { Enabled = true, TrustedCA = authority.AuthorityFile };
        Assert.Contains("Cluster:Tls:Certificate (--tls-certificate) is not set: a silo needs its own certificate", SiloError(tls));
        Assert.Contains("Cluster:Tls:Certificate (--tls-certificate) is not set: under mutual TLS", Assert.Throws<ArgumentException>(() => tls.ClientSettings()).Message);
        tls.RequireClientCertificate = false;
        var anonymous = Applied(tls.ClientSettings());
        Assert.Null(anonymous.LocalCertificate);
        Assert.Equal(RemoteCertificateMode.NoCertificate, anonymous.ClientCertificateMode);
    }

    [Fact]
    public void Something_must_say_which_peers_to_trust()
    {
        var tls = Silo();
        tls.TrustedCA = null;
        Assert.Contains("nothing says which peers to trust: set Cluster:Tls:TrustedCA", SiloError(tls));
    }

    [Fact]
    public void Missing_files_are_named_with_their_setting()
    {
        var tls = Silo();
        tls.Certificate = Path.Combine(authority.Folder, "nowhere.pfx");
        Assert.Contains($"Cluster:Tls:Certificate (--tls-certificate): there is no file '{tls.Certificate}'", SiloError(tls));
        tls = Silo();
        tls.TrustedCA = Path.Combine(authority.Folder, "no-ca.pem");
        Assert.Contains($"Cluster:Tls:TrustedCA (--tls-ca): there is no file '{tls.TrustedCA}'", SiloError(tls));
    }

    [Fact]
    public void A_wrong_or_missing_PFX_password_is_named()
    {
        var tls = Silo();
        tls.Password = "not-the-password";
        Assert.Contains("Cluster:Tls:Certificate (--tls-certificate): cannot open", SiloError(tls));
        Assert.Contains("with the password in Cluster:Tls:Password ($ORCHESTRATOR_TLS_PASSWORD)", SiloError(tls));
        Assert.DoesNotContain("not-the-password", SiloError(tls));
        tls.Password = null;
        Assert.Contains("with no password (Cluster:Tls:Password ($ORCHESTRATOR_TLS_PASSWORD) is not set)", SiloError(tls));
    }

    [Fact]
    public void A_certificate_without_its_private_key_is_refused()
    {
        var tls = Silo();
        tls.Certificate = authority.WritePfxWithoutKey(authority.Issue("keyless"), "keyless.pfx");
        Assert.Contains("holds the certificate 'CN=keyless' but not its private key", SiloError(tls));

        var (pem, _) = authority.WritePem(authority.Issue("pem-keyless"), "pem-keyless");
        tls = Silo();
        (tls.Certificate, tls.Password) = (pem, null);
        Assert.Contains("is a PEM certificate but", SiloError(tls));
        Assert.Contains("holds no private key", SiloError(tls));
    }

    [Fact]
    public void A_PEM_certificate_loads_with_its_key_plain_or_encrypted_and_a_wrong_key_password_is_named()
    {
        var (certificate, key) = authority.WritePem(authority.Issue("pem"), "pem");
        var tls = Silo();
        (tls.Certificate, tls.Key, tls.Password) = (certificate, key, null);
        Assert.Equal("CN=pem", Applied(tls.SiloSettings()).LocalCertificate?.Subject);

        (tls.Certificate, tls.Key) = authority.WritePem(authority.Issue("pem-encrypted"), "pem-encrypted", keyPassword: "key-secret");
        Assert.Contains("is encrypted: give its password in Cluster:Tls:Password", SiloError(tls));
        tls.Password = "key-secret";
        Assert.Equal("CN=pem-encrypted", Applied(tls.SiloSettings()).LocalCertificate?.Subject);
        tls.Password = "wrong";
        Assert.Contains("(is Cluster:Tls:Password ($ORCHESTRATOR_TLS_PASSWORD) right?)", SiloError(tls));
    }

    [Fact]
    public void An_expired_or_not_yet_valid_certificate_is_refused()
    {
        var expired = authority.Issue("expired", DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-10));
        Assert.Contains("the certificate 'CN=expired'", SiloError(Silo(expired)));
        Assert.Contains("expired on", SiloError(Silo(expired)));
        var early = authority.Issue("early", DateTimeOffset.UtcNow.AddDays(5), DateTimeOffset.UtcNow.AddDays(10));
        Assert.Contains("is not valid before", SiloError(Silo(early)));
    }

    [Fact]
    public void A_certificate_for_clients_only_cannot_serve_a_silo()
    {
        var message = SiloError(Silo(authority.Issue("client-only", serverAuth: false)));
        Assert.Contains("may not be used for TLS serverAuth", message);
    }

    [Fact]
    public void A_silo_certificate_that_its_own_trust_settings_refuse_is_refused_at_start()
    {
        var tls = Silo(other.Issue("stranger"));
        Assert.Contains("would be refused by the other silos", SiloError(tls));
        Assert.Contains("does not chain to Cluster:Tls:TrustedCA", SiloError(tls));
    }

    [Fact]
    public void Malformed_thumbprints_and_CA_files_are_refused()
    {
        var tls = Silo();
        tls.TrustedThumbprints = ["not-hex"];
        Assert.Contains("Cluster:Tls:TrustedThumbprints (--tls-thumbprint): 'not-hex' is not a SHA-256", SiloError(tls));
        tls = Silo();
        tls.TrustedCA = tls.Certificate;   // a PFX, not a certificate file
        Assert.Contains("Cluster:Tls:TrustedCA (--tls-ca): '", SiloError(tls));
    }

    [Fact]
    public void Peers_are_trusted_when_their_certificate_chains_to_the_trusted_CA_and_not_otherwise()
    {
        var validate = Validator(Silo());
        Assert.True(validate(authority.Issue("peer"), null, SslPolicyErrors.RemoteCertificateNameMismatch));   // host names are not checked
        var refusal = Refusal(validate, other.Issue("stranger"));
        Assert.Contains("TLS peer refused: the certificate 'CN=stranger' (SHA-256 ", refusal);
        Assert.Contains("does not chain to Cluster:Tls:TrustedCA", refusal);
        Assert.Contains("'CN=old' (SHA-256 ", Refusal(validate, authority.Issue("old", DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-10))));
        Assert.Contains("expired on", Refusal(validate, authority.Issue("old", DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-10))));
    }

    [Fact]
    public void Pinned_thumbprints_accept_only_those_certificates_and_with_a_CA_both_must_hold()
    {
        var pinned = authority.Issue("pinned");
        var tls = Silo();
        tls.TrustedCA = null;
        tls.TrustedThumbprints = [pinned.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant()];
        Assert.True(Validator(tls)(pinned, null, SslPolicyErrors.None));
        Assert.Contains("is not one of Cluster:Tls:TrustedThumbprints", Refusal(Validator(tls), authority.Issue("unpinned")));

        var strangerPinned = other.Issue("stranger");
        tls.TrustedThumbprints = [pinned.Thumbprint, strangerPinned.Thumbprint];   // SHA-1 works too
        Assert.True(Validator(tls)(strangerPinned, null, SslPolicyErrors.None));
        tls.TrustedCA = authority.AuthorityFile;
        Assert.True(Validator(tls)(pinned, null, SslPolicyErrors.None));
        Assert.Contains("does not chain to Cluster:Tls:TrustedCA", Refusal(Validator(tls), strangerPinned));
    }

    [Fact]
    public void An_expired_pinned_certificate_is_refused()
    {
        var expired = authority.Issue("expired-pin", DateTimeOffset.UtcNow.AddDays(-20), DateTimeOffset.UtcNow.AddDays(-10));
        var tls = Silo();
        tls.TrustedCA = null;
        tls.TrustedThumbprints = [expired.GetCertHashString(HashAlgorithmName.SHA256)];
        Assert.Contains("expired on", Refusal(Validator(tls), expired));
    }
}
