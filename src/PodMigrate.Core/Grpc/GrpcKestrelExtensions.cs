using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace PodMigrate.Core.Grpc;

/// <summary>Kestrel endpoints for gRPC: HTTP/2 only, without TLS (clients connect with prior knowledge).</summary>
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

    /// <summary>Listens on a TCP endpoint (port 0 picks a free port; read it back from the server's addresses).</summary>
    public static KestrelServerOptions ListenGrpcTcp(this KestrelServerOptions options, IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(endPoint);
        options.Listen(endPoint, listen => listen.Protocols = HttpProtocols.Http2);
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
