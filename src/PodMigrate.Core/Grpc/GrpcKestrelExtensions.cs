using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// Kestrel endpoints for gRPC: HTTP/2 only, cleartext with prior knowledge (unix sockets, local TCP) or mutual TLS
/// with ALPN h2 (<see cref="SslServerCredentials"/>).
/// </summary>
public static class GrpcKestrelExtensions
{
    /// <summary>Listens on a unix socket; a socket file left behind by a dead server is removed first, a live one is not.</summary>
    public static KestrelServerOptions ListenGrpcUnixSocket(this KestrelServerOptions options, string socketPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        if (Path.GetDirectoryName(Path.GetFullPath(socketPath)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }
        RemoveStaleSocket(socketPath);
        options.ListenUnixSocket(socketPath, listen => listen.Protocols = HttpProtocols.Http2);
        return options;
    }

    /// <summary>
    /// Listens on a TCP endpoint (port 0 picks a free port; read it back from the server's addresses), in cleartext
    /// (<paramref name="credentials"/> null or <see cref="ServerCredentials.Insecure"/>) or with mutual TLS only.
    /// </summary>
    public static KestrelServerOptions ListenGrpcTcp(this KestrelServerOptions options, IPEndPoint endPoint, ServerCredentials? credentials = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endPoint);
        options.Listen(endPoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (credentials is SslServerCredentials ssl)
            {
                var logger = options.ApplicationServices?.GetService<ILoggerFactory>()?.CreateLogger(typeof(SslServerCredentials)) ?? NullLogger.Instance;
                // The handshake callback hands SslStream the whole configuration per connection: the current certificate
                // (a reloaded one for new connections), the client CAs as the only trust, and a log line for each refusal.
                listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = context => ValueTask.FromResult(ssl.ToServerOptions(context.Connection.RemoteEndPoint, logger)),
                });
            }
        });
        return options;
    }

    private static void RemoveStaleSocket(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // Nobody listens: the file is what a killed server left. A live socket stays, and binding fails loudly.
            File.Delete(socketPath);
        }
    }
}
