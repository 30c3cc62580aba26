using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// TLS to an agent (what grpc calls SslCredentials, applied to the channel's SocketsHttpHandler): the server's
/// certificate must chain to one of <see cref="TrustedCas"/> (the system's trust store is not used) and name the host
/// the channel connects to, or <see cref="TargetNameOverride"/>; with a <see cref="ClientCertificate"/> the channel
/// authenticates itself (mutual TLS).
/// </summary>
public sealed class ClientTlsCredentials
{
    public ClientTlsCredentials(X509Certificate2Collection trustedCas, X509Certificate2? clientCertificate = null, X509Certificate2Collection? clientIntermediates = null)
    {
        ArgumentNullException.ThrowIfNull(trustedCas);
        if (trustedCas.Count == 0)
        {
            throw new ArgumentException("TLS credentials need at least one trusted CA", nameof(trustedCas));
        }
        if (clientCertificate is { HasPrivateKey: false })
        {
            throw new ArgumentException($"the client certificate {clientCertificate.Subject} comes without its private key", nameof(clientCertificate));
        }
        TrustedCas = trustedCas;
        ClientCertificate = clientCertificate;
        ClientIntermediates = clientIntermediates ?? [];
    }

    /// <summary>The CAs the server's certificate must chain to.</summary>
    public X509Certificate2Collection TrustedCas { get; }

    /// <summary>This client's certificate with its private key, or null to present none.</summary>
    public X509Certificate2? ClientCertificate { get; }

    public X509Certificate2Collection ClientIntermediates { get; }

    /// <summary>
    /// The name the server's certificate must carry when it is not the host the channel connects to (grpc's
    /// ssl_target_name_override): e.g. an agent reached at its pod IP whose certificate names its node. It is also sent
    /// as the TLS server name (SNI) and the :authority.
    /// </summary>
    public string? TargetNameOverride { get; init; }

    /// <summary>Mutual TLS with one party's material: its certificate as the client's, its CA bundle for the server.</summary>
    public static ClientTlsCredentials Mutual(TlsCertificates certificates, string? targetNameOverride = null)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        return new ClientTlsCredentials(certificates.TrustedCas, certificates.Certificate, certificates.Intermediates) { TargetNameOverride = targetNameOverride };
    }

    internal SslClientAuthenticationOptions ToClientOptions() => new()
    {
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        // The chain is built against TrustedCas only; SslStream still checks the name against the target host.
        CertificateChainPolicy = TlsCertificates.PeerChainPolicy(TrustedCas, TlsCertificates.ServerAuthentication),
        ClientCertificateContext = ClientCertificate is null ? null : SslStreamCertificateContext.Create(ClientCertificate, ClientIntermediates, offline: true),
    };
}
