using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// Mutual TLS (HTTP/2 over TLS, ALPN h2): the server presents its certificate, and every client must present one that
/// chains to the server's trusted CAs (only those; not the system's store) and is issued for client authentication.
/// A connection without such a certificate fails in the handshake and never reaches a handler.
/// </summary>
public sealed class ServerTlsCredentials
{
    private readonly Func<TlsCertificates> _certificates;

    /// <summary>
    /// <paramref name="certificates"/> is asked at each new connection, so a source that reloads its files on change
    /// rotates the certificate and the client CAs without a restart; established connections keep theirs.
    /// </summary>
    public ServerTlsCredentials(Func<TlsCertificates> certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        _certificates = certificates;
    }

    public ServerTlsCredentials(TlsCertificates certificates)
        : this(() => certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
    }

    /// <summary>The material in effect now (the server's certificate and the client CAs).</summary>
    public TlsCertificates Current => _certificates();

    internal SslServerAuthenticationOptions ToServerOptions(EndPoint? remote, ILogger logger)
    {
        var current = _certificates();
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = current.CertificateContext,
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = TlsCertificates.PeerChainPolicy(current.TrustedCas, TlsCertificates.ClientAuthentication),
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }
                // The client sees only a TLS alert; the reason is for the operator.
                GrpcTlsLog.ClientRejected(logger, remote?.ToString() ?? "?", certificate?.Subject ?? "(none)", Describe(errors, chain));
                return false;
            },
        };
    }

    private static string Describe(SslPolicyErrors errors, X509Chain? chain)
    {
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return "no client certificate";
        }
        var statuses = chain?.ChainStatus.Select(s => s.Status.ToString()).Distinct().ToArray() ?? [];
        return statuses.Length == 0 ? errors.ToString() : $"{errors}: {string.Join(", ", statuses)}";
    }
}

internal static partial class GrpcTlsLog
{
    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "TLS client {Remote} rejected (certificate {Subject}): {Reason}")]
    public static partial void ClientRejected(ILogger logger, string remote, string subject, string reason);
}
