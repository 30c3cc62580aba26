using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PodMigrate.Core.Grpc;

/// <summary>Kestrel TCP endpoints for gRPC: HTTP/2 only, cleartext with prior knowledge or mutual TLS with ALPN h2.</summary>
public static class GrpcKestrelExtensions
{
    /// <summary>
    /// Listens on a TCP endpoint (port 0 picks a free port; read it back from the server's addresses), in cleartext
    /// (<paramref name="tls"/> null) or with mutual TLS only.
    /// </summary>
    public static KestrelServerOptions ListenGrpcTcp(this KestrelServerOptions options, IPEndPoint endPoint, ServerTlsCredentials? tls = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endPoint);
        options.Listen(endPoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (tls is not null)
            {
                var logger = options.ApplicationServices?.GetService<ILoggerFactory>()?.CreateLogger(typeof(ServerTlsCredentials)) ?? NullLogger.Instance;
                // The handshake callback hands SslStream the whole configuration per connection: the current certificate
                // (a reloaded one for new connections), the client CAs as the only trust, and a log line for each refusal.
                listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = context => ValueTask.FromResult(tls.ToServerOptions(context.Connection.RemoteEndPoint, logger)),
                });
            }
        });
        return options;
    }
}
