using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// Reads the certificate files of <see cref="ClusterTlsOptions"/> at start, so that a wrong file, password or
/// certificate stops the silo (or client) with an error naming the setting instead of failing every handshake later.
/// </summary>
static class TlsCertificateFile
{
    const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";
    static readonly string CertificateSetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.Certificate));
    static readonly string KeySetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.Key));
    static readonly string PasswordSetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.Password));
    static readonly string TrustedCASetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.TrustedCA));

    /// <summary>Who uses the certificate: a silo both accepts connections and makes them, a client only makes them.</summary>
    public enum Usage { Silo, Client }

    /// <summary>
    /// This node's certificate with its private key, from a PFX or a PEM file (<paramref name="keyPath"/> when the key
    /// is in a file of its own); null when <paramref name="path"/> is not set. It must be valid now and allowed for
    /// <paramref name="usage"/>.
    /// </summary>
    public static X509Certificate2? LoadOwn(string? path, string? keyPath, string? password, Usage usage)
    {
        if (string.IsNullOrWhiteSpace(path))
            return string.IsNullOrWhiteSpace(keyPath) ? null
                : throw new ArgumentException($"{KeySetting} is set but {CertificateSetting} is not: give the PEM certificate the key belongs to.");
        RequireFile(CertificateSetting, path);
        var certificate = IsPem(path) ? LoadPem(path, keyPath, password) : LoadPfx(path, keyPath, password);
        if (!certificate.HasPrivateKey)
            throw new ArgumentException($"{CertificateSetting}: '{path}' holds the certificate '{certificate.Subject}' but not its private key, " +
                $"which TLS needs to prove it is this node's: use a PFX exported with its key, or a PEM key ({KeySetting}).");
        var now = DateTime.UtcNow;
        if (certificate.NotAfter.ToUniversalTime() < now)
            throw new ArgumentException($"{CertificateSetting}: the certificate '{certificate.Subject}' in '{path}' expired on {Utc(certificate.NotAfter)}; renew it.");
        if (certificate.NotBefore.ToUniversalTime() > now)
            throw new ArgumentException($"{CertificateSetting}: the certificate '{certificate.Subject}' in '{path}' is not valid before {Utc(certificate.NotBefore)}; check this host's clock.");
        foreach (var (oid, role) in usage == Usage.Silo
                     ? new[] { (ServerAuthentication, "serverAuth"), (ClientAuthentication, "clientAuth") }
                     : [(ClientAuthentication, "clientAuth")])
            if (!AllowsUsage(certificate, oid))
                throw new ArgumentException($"{CertificateSetting}: the certificate '{certificate.Subject}' in '{path}' may not be used for TLS {role} " +
                    "(its extended key usage lacks it): a silo's certificate needs serverAuth and clientAuth, since it accepts connections and makes them; a client's needs clientAuth.");
        return certificate;
    }

    /// <summary>The CA certificates of a PEM (one or more) or DER file.</summary>
    public static X509Certificate2Collection LoadAuthorities(string path)
    {
        RequireFile(TrustedCASetting, path);
        var authorities = new X509Certificate2Collection();
        try
        {
            if (IsPem(path)) authorities.ImportFromPemFile(path);
            else authorities.Add(X509CertificateLoader.LoadCertificateFromFile(path));
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"{TrustedCASetting}: '{path}' is not a PEM or DER certificate file: {e.Message}", e);
        }
        return authorities.Count > 0 ? authorities
            : throw new ArgumentException($"{TrustedCASetting}: '{path}' holds no certificate (expected '-----BEGIN CERTIFICATE-----' blocks).");
    }

    static X509Certificate2 LoadPem(string path, string? keyPath, string? password)
    {
        if (!string.IsNullOrWhiteSpace(keyPath)) RequireFile(KeySetting, keyPath);
        var (keyFile, keyText) = string.IsNullOrWhiteSpace(keyPath) ? (path, File.ReadAllText(path)) : (keyPath, File.ReadAllText(keyPath));
        if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            throw new ArgumentException($"{CertificateSetting}: '{path}' is a PEM certificate but '{keyFile}' holds no private key " +
                $"('-----BEGIN PRIVATE KEY-----'): put the key in {KeySetting}, or use a PFX.");
        if (keyText.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
            throw new ArgumentException($"{CertificateSetting}: the private key in '{keyFile}' is encrypted in OpenSSL's legacy format, which .NET cannot read: " +
                "convert it to PKCS#8 (openssl pkcs8 -topk8 -in OLD.key -out NEW.key).");
        bool encrypted = keyText.Contains("BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (encrypted && string.IsNullOrEmpty(password))
            throw new ArgumentException($"{CertificateSetting}: the private key in '{keyFile}' is encrypted: give its password in {PasswordSetting} (env Cluster__Tls__Password).");
        try
        {
            return encrypted
                ? X509Certificate2.CreateFromEncryptedPemFile(path, password, NullIfBlank(keyPath))
                : X509Certificate2.CreateFromPemFile(path, NullIfBlank(keyPath));
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"{CertificateSetting}: cannot read '{path}' with the key in '{keyFile}'" +
                (encrypted ? $" (is {PasswordSetting} right?)" : "") + $": {e.Message} The key must be the certificate's.", e);
        }
    }

    static X509Certificate2 LoadPfx(string path, string? keyPath, string? password)
    {
        if (!string.IsNullOrWhiteSpace(keyPath))
            throw new ArgumentException($"{KeySetting} is for PEM certificates, but '{path}' ({CertificateSetting}) is not PEM: a PFX carries its own key.");
        try
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"{CertificateSetting}: cannot open '{path}' as a PFX (PKCS#12) file with " +
                (string.IsNullOrEmpty(password) ? $"no password ({PasswordSetting} is not set)" : $"the password in {PasswordSetting}") +
                $": {e.Message.TrimEnd('.')}. Check the password, or give a PEM file.", e);
        }
    }

    /// <summary>Without an extended key usage extension a certificate may be used for anything (RFC 5280 4.2.1.12).</summary>
    static bool AllowsUsage(X509Certificate2 certificate, string oid)
    {
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().ToList();
        return usages.Count == 0 || usages.Any(u => u.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == oid));
    }

    static void RequireFile(string setting, string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"{setting}: there is no file '{Path.GetFullPath(path)}'.");
    }

    static bool IsPem(string path)
    {
        using var file = File.OpenRead(path);
        var head = new byte[Math.Min(4096, file.Length)];
        file.ReadExactly(head);
        return System.Text.Encoding.ASCII.GetString(head).Contains("-----BEGIN ", StringComparison.Ordinal);
    }

    static string? NullIfBlank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    static string Utc(DateTime time) => $"{time.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC";
}
