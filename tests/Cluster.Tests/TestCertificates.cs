using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Orchestrator.Cluster.Tests;

/// <summary>
/// A certificate authority made for a test, and certificates it issues, written to a temporary folder as the files
/// Cluster:Tls reads (PFX, PEM certificate and key, the CA's PEM). ECDSA P-256: quick to generate on a slow machine.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public const string Password = "test-pfx-password";
    const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    readonly X509Certificate2 authority;

    public string Folder { get; } = Directory.CreateTempSubdirectory("orchestrator-tls").FullName;
    /// <summary>The CA's certificate as PEM: what Cluster:Tls:TrustedCA names.</summary>
    public string AuthorityFile { get; }

    public TestCertificates(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(30));
        AuthorityFile = Path.Combine(Folder, $"{name}.ca.pem");
        File.WriteAllText(AuthorityFile, authority.ExportCertificatePem());
    }

    /// <summary>
    /// A certificate issued by this CA, with its key. By default valid now, for serverAuth and clientAuth (what a silo
    /// needs); a client's needs only clientAuth.
    /// </summary>
    public X509Certificate2 Issue(string name, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, bool serverAuth = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var oids = new OidCollection();
        oids.Add(new Oid(ClientAuthentication));
        if (serverAuth) oids.Add(new Oid(ServerAuthentication));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;   // a positive serial number
        using var issued = request.Create(authority, notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(10), serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary><paramref name="certificate"/> with its key as a PFX protected by <see cref="Password"/>.</summary>
    public string WritePfx(X509Certificate2 certificate, string file, string password = Password)
    {
        var path = Path.Combine(Folder, file);
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
        return path;
    }

    /// <summary><paramref name="certificate"/> as a PFX without its private key.</summary>
    public string WritePfxWithoutKey(X509Certificate2 certificate, string file)
    {
        using var publicOnly = X509CertificateLoader.LoadCertificate(certificate.RawData);
        var path = Path.Combine(Folder, file);
        File.WriteAllBytes(path, publicOnly.Export(X509ContentType.Pfx, Password));
        return path;
    }

    /// <summary>The certificate and its PKCS#8 key as two PEM files; the key encrypted when <paramref name="keyPassword"/> is given.</summary>
    public (string Certificate, string Key) WritePem(X509Certificate2 certificate, string name, string? keyPassword = null)
    {
        var (certificatePath, keyPath) = (Path.Combine(Folder, $"{name}.pem"), Path.Combine(Folder, $"{name}.key"));
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        using var key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"{certificate.Subject} has no ECDSA key.");
        File.WriteAllText(keyPath, keyPassword is null ? key.ExportPkcs8PrivateKeyPem()
            : key.ExportEncryptedPkcs8PrivateKeyPem(keyPassword, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)));
        return (certificatePath, keyPath);
    }

    public void Dispose()
    {
        authority.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}
