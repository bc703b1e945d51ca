using Orleans.Connections.Security;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// TLS for Orleans messaging (silo to silo, client to gateway), bound from "Cluster:Tls". Off by default. When on,
/// every connection is TLS: each side presents its certificate (a silo always, a client unless
/// <see cref="RequireClientCertificate"/> is off) and accepts the other's only when <see cref="TrustedCA"/> and
/// <see cref="TrustedThumbprints"/> say so. Host names are not checked: silos are reached at IP addresses that change
/// (pods), so a peer is whoever holds a certificate the cluster trusts. The data channel is not covered.
/// </summary>
public sealed class ClusterTlsOptions
{
    public const string Section = "Cluster:Tls";
    /// <summary>How the settings' environment variables begin.</summary>
    public const string EnvironmentPrefix = "Cluster__Tls__";

    /// <summary>Whether Orleans traffic is TLS. The other settings are an error without it, so a cluster is never plain by oversight.</summary>
    public bool Enabled { get; set; }
    /// <summary>This node's certificate with its private key: a PFX (PKCS#12) file, or a PEM file (the key inside, or in <see cref="Key"/>).</summary>
    public string? Certificate { get; set; }
    /// <summary>PEM only: the private key file, when it is not in the <see cref="Certificate"/> file.</summary>
    public string? Key { get; set; }
    /// <summary>The PFX password, or the password of an encrypted PEM key. From the environment (Cluster__Tls__Password), never a command line.</summary>
    public string? Password { get; set; }
    /// <summary>
    /// Mutual TLS (default): silos refuse connections (from silos and clients) without a trusted certificate, and a
    /// client must have one. Off: silos accept connections without a certificate, on the silo port as on the gateway
    /// (Orleans applies one setting to both), so TLS then encrypts and proves the silos to their peers but keeps nobody out.
    /// </summary>
    public bool RequireClientCertificate { get; set; } = true;
    /// <summary>A PEM (or DER) file of the CA certificates peers' certificates must chain to; intermediates may be in it too.</summary>
    public string? TrustedCA { get; set; }
    /// <summary>SHA-256 (or SHA-1) fingerprints, hex with or without colons, of the only peer certificates accepted.</summary>
    public List<string> TrustedThumbprints { get; set; } = [];

    /// <summary>
    /// The silo's TLS, checked and loaded now (errors name the setting): its certificate, which other silos with the
    /// same trust settings must accept, and the trust it applies to silos and clients that connect. Null when TLS is off.
    /// </summary>
    public Action<TlsOptions>? SiloSettings()
    {
        if (!IsOn()) return null;
        var trust = Trust();
        var certificate = TlsCertificateFile.LoadOwn(Certificate, Key, Password, TlsCertificateFile.Usage.Silo)
            ?? throw new ArgumentException($"{Section}:Enabled is true but {Setting(nameof(Certificate))} is not set: a silo needs its own certificate (PFX or PEM) to serve TLS.");
        if (trust.Refusal(certificate, null) is { } refusal)
            throw new ArgumentException($"{Setting(nameof(Certificate))} would be refused by the other silos, which trust what this one does: {refusal}");
        return tls =>
        {
            tls.LocalCertificate = certificate;
            tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;   // a silo presents its certificate to silos it connects to
            tls.RemoteCertificateMode = RequireClientCertificate ? RemoteCertificateMode.RequireCertificate : RemoteCertificateMode.AllowCertificate;
            tls.RemoteCertificateValidation = trust.Validate;
        };
    }

    /// <summary>A client's TLS, checked and loaded now: its certificate (required under mutual TLS) and the trust it applies to gateways. Null when TLS is off.</summary>
    public Action<TlsOptions>? ClientSettings()
    {
        if (!IsOn()) return null;
        var trust = Trust();
        var certificate = TlsCertificateFile.LoadOwn(Certificate, Key, Password, TlsCertificateFile.Usage.Client);
        if (certificate is null && RequireClientCertificate)
            throw new ArgumentException($"{Section}:Enabled is true but {Setting(nameof(Certificate))} is not set: under mutual TLS " +
                $"({Setting(nameof(RequireClientCertificate))}, the default) the silos accept only clients with a certificate they trust.");
        return tls =>
        {
            tls.LocalCertificate = certificate;
            tls.ClientCertificateMode = certificate is null ? RemoteCertificateMode.NoCertificate : RemoteCertificateMode.RequireCertificate;
            tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;   // a gateway must always prove it is the cluster's
            tls.RemoteCertificateValidation = trust.Validate;
        };
    }

    /// <summary>
    /// The settings as the environment variables a silo host process reads (Cluster__Tls__...), files as absolute
    /// paths: how a client hands its TLS to the silo processes it starts without putting the password on a command line.
    /// </summary>
    public Dictionary<string, string> ToEnvironment()
    {
        var environment = new Dictionary<string, string>
        {
            [EnvironmentPrefix + nameof(Enabled)] = Enabled ? "true" : "false",
            [EnvironmentPrefix + nameof(RequireClientCertificate)] = RequireClientCertificate ? "true" : "false",
        };
        foreach (var (name, file) in GivenFiles()) environment[EnvironmentPrefix + name] = Path.GetFullPath(file);
        if (!string.IsNullOrEmpty(Password)) environment[EnvironmentPrefix + nameof(Password)] = Password;
        for (int i = 0; i < TrustedThumbprints.Count; i++) environment[$"{EnvironmentPrefix}{nameof(TrustedThumbprints)}__{i}"] = TrustedThumbprints[i];
        return environment;
    }

    /// <summary>
    /// <see cref="Enabled"/>; TLS settings given while it is off are an error: a cluster meant to be secured must not
    /// start plain because one switch was forgotten.
    /// </summary>
    bool IsOn()
    {
        if (Enabled) return true;
        var given = GivenFiles().Select(f => Setting(f.Name))
            .Concat(TrustedThumbprints.Any(t => !string.IsNullOrWhiteSpace(t)) ? [Setting(nameof(TrustedThumbprints))] : [])
            .ToList();
        if (given.Count > 0)
            throw new ArgumentException($"{string.Join(" and ", given)} {(given.Count == 1 ? "is" : "are")} set but {Section}:Enabled is not true: " +
                $"set {Section}:Enabled=true (env Cluster__Tls__Enabled=true) to secure the cluster with TLS, or remove the {Section} settings.");
        return false;
    }

    /// <summary>The file settings that are set, by property name.</summary>
    IEnumerable<(string Name, string Path)> GivenFiles()
    {
        foreach (var (name, path) in new[] { (nameof(Certificate), Certificate), (nameof(Key), Key), (nameof(TrustedCA), TrustedCA) })
            if (!string.IsNullOrWhiteSpace(path)) yield return (name, path);
    }

    PeerTrust Trust()
    {
        var authorities = string.IsNullOrWhiteSpace(TrustedCA) ? null : TlsCertificateFile.LoadAuthorities(TrustedCA);
        var pins = PeerTrust.ParseThumbprints(TrustedThumbprints);
        if (authorities is null && pins.Count == 0)
            throw new ArgumentException($"{Section}:Enabled is true but nothing says which peers to trust: set {Setting(nameof(TrustedCA))} " +
                $"(the CA that issued the cluster's certificates) or {Setting(nameof(TrustedThumbprints))} (the certificates themselves).");
        return new PeerTrust(authorities, pins);
    }

    /// <summary>A setting's key, and the CLI's name for it where it has one: the error reaches users of either.</summary>
    internal static string Setting(string name) => name switch
    {
        nameof(Certificate) => $"{Section}:{name} (--tls-certificate)",
        nameof(Key) => $"{Section}:{name} (--tls-key)",
        nameof(Password) => $"{Section}:{name} ($ORCHESTRATOR_TLS_PASSWORD)",
        nameof(TrustedCA) => $"{Section}:{name} (--tls-ca)",
        nameof(TrustedThumbprints) => $"{Section}:{name} (--tls-thumbprint)",
        _ => $"{Section}:{name}",
    };
}
