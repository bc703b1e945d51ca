using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Orchestrator.Grains.Hosting;

/// <summary>
/// Which TLS peers (silos, clients, gateways) are accepted: those whose certificate chains to one of the cluster's
/// CAs (<see cref="ClusterTlsOptions.TrustedCA"/>, not the machine's trust store: a public CA vouches for anyone) and,
/// when thumbprints are pinned, is one of them. The system's verdict (which also checks host names, meaningless for
/// silos at changing IPs) is ignored; revocation is not checked (the cluster's CA publishes no list): retire a
/// certificate by pinning thumbprints or by replacing the CA.
/// </summary>
sealed class PeerTrust(X509Certificate2Collection? authorities, IReadOnlyList<string> pins)
{
    static readonly string TrustedCASetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.TrustedCA));
    static readonly string ThumbprintsSetting = ClusterTlsOptions.Setting(nameof(ClusterTlsOptions.TrustedThumbprints));

    /// <summary>
    /// Orleans' validation callback. A refusal throws rather than returning false, so that the handshake failure
    /// Orleans logs says which certificate was refused and why.
    /// </summary>
    public bool Validate(X509Certificate2 certificate, X509Chain? presented, SslPolicyErrors systemVerdict) =>
        Refusal(certificate, presented) is { } refusal
            ? throw new AuthenticationException($"TLS peer refused: the certificate '{certificate.Subject}' (SHA-256 {Sha256(certificate)}) {refusal}")
            : true;

    /// <summary>Why <paramref name="certificate"/> is not trusted, or null when it is. <paramref name="presented"/> holds the intermediates the peer sent.</summary>
    public string? Refusal(X509Certificate2 certificate, X509Chain? presented)
    {
        if (pins.Count > 0 && !pins.Contains(Sha256(certificate)) && !pins.Contains(certificate.Thumbprint.ToUpperInvariant()))
            return $"is not one of {ThumbprintsSetting}.";
        var now = DateTime.UtcNow;
        if (certificate.NotAfter.ToUniversalTime() < now) return $"expired on {certificate.NotAfter.ToUniversalTime():u}.";
        if (certificate.NotBefore.ToUniversalTime() > now) return $"is not valid before {certificate.NotBefore.ToUniversalTime():u}.";
        if (authorities is null) return null;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;   // the cluster's CAs are all local
        // Only self-signed certificates anchor trust; intermediates of the file, and those the peer sent, link the chain to them.
        foreach (var authority in authorities)
            (authority.SubjectName.RawData.AsSpan().SequenceEqual(authority.IssuerName.RawData) ? chain.ChainPolicy.CustomTrustStore : chain.ChainPolicy.ExtraStore)
                .Add(authority);
        if (presented is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        return chain.Build(certificate) ? null
            : $"does not chain to {TrustedCASetting}: {string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct())}.";
    }

    /// <summary>
    /// The pinned thumbprints as upper-case hex: SHA-256 (64 digits, what `openssl x509 -fingerprint -sha256` prints)
    /// or SHA-1 (40); colons and spaces are ignored, and an entry may hold several, comma-separated.
    /// </summary>
    public static IReadOnlyList<string> ParseThumbprints(IEnumerable<string> entries) =>
        entries.SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(text =>
            {
                var hex = new string(text.Where(c => c is not (':' or ' ')).ToArray()).ToUpperInvariant();
                return hex.Length is 40 or 64 && hex.All(Uri.IsHexDigit) ? hex
                    : throw new ArgumentException($"{ThumbprintsSetting}: '{text}' is not a SHA-256 (64 hex digits) or SHA-1 (40) certificate fingerprint.");
            })
            .ToList();

    static string Sha256(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);
}
