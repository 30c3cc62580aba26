using System.Net;
using System.Net.Sockets;
using Grpc.Net.Client;

namespace PodMigrate.Core.Grpc;

/// <summary>How a client reaches a gRPC endpoint: limits, connect deadline, and TLS for https:// addresses.</summary>
public sealed class GrpcConnectOptions
{
    /// <summary>Largest message accepted from the server; a larger one fails the call with ResourceExhausted.</summary>
    public int MaxReceiveMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>Deadline for establishing the connection (unix socket or TCP connect + TLS).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>TLS of an https:// address (required there; refused for http:// and unix sockets).</summary>
    public ClientTlsCredentials? Tls { get; init; }
}

/// <summary>
/// grpc-dotnet channels on a SocketsHttpHandler we configure: unix sockets through a connect callback, h2c on
/// http://, and TLS with our own trust (no system store) on https://. Share one channel per endpoint.
/// </summary>
public static class GrpcChannels
{
    /// <summary>A channel to a unix socket (always cleartext: the socket's file permissions guard it).</summary>
    public static GrpcChannel ForUnixSocket(string socketPath, GrpcConnectOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        options ??= new GrpcConnectOptions();
        if (options.Tls is not null)
        {
            throw new ArgumentException($"unix socket {socketPath}: TLS credentials are for TCP addresses; a unix socket is guarded by its file permissions", nameof(options));
        }
        var endPoint = new UnixDomainSocketEndPoint(socketPath);
        var handler = Handler(options);
        handler.ConnectCallback = (_, cancellationToken) => ConnectUnixSocketAsync(socketPath, endPoint, cancellationToken);
        // The authority is only a header here: every connection goes to the socket.
        return Create(new Uri("http://localhost"), handler, options);
    }

    /// <summary>
    /// A TCP channel: http://host:port is HTTP/2 cleartext; https://host:port is TLS and needs
    /// <see cref="GrpcConnectOptions.Tls"/> (there is no fallback to the system's trust store).
    /// </summary>
    public static GrpcChannel ForAddress(Uri address, GrpcConnectOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        options ??= new GrpcConnectOptions();
        if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"a gRPC address is http://host:port (h2c) or https://host:port, not {address}", nameof(address));
        }
        var handler = Handler(options);
        if (address.Scheme == Uri.UriSchemeHttp)
        {
            return options.Tls is null
                ? Create(address, handler, options)
                : throw new ArgumentException($"{Describe(address, options)}: TLS credentials need an https:// address", nameof(options));
        }
        if (options.Tls is not { } tls)
        {
            throw new ArgumentException($"{Describe(address, options)}: an https:// address needs TLS credentials (the CAs to trust, and a client certificate for mutual TLS)", nameof(options));
        }
        handler.SslOptions = tls.ToClientOptions();
        if (tls.TargetNameOverride is { Length: > 0 } serverName)
        {
            // The channel speaks to serverName (SNI, the name checked in the certificate, :authority) while the
            // connection goes to the address: grpc's ssl_target_name_override.
            var host = address.Host;
            var port = address.Port;
            handler.ConnectCallback = (_, cancellationToken) => ConnectTcpAsync(host, port, cancellationToken);
            address = new UriBuilder(address) { Host = serverName }.Uri;
        }
        return Create(address, handler, options);
    }

    /// <summary>The address for messages: "https://10.0.0.7:7440 (TLS name node-a)".</summary>
    public static string Describe(Uri address, GrpcConnectOptions? options)
    {
        ArgumentNullException.ThrowIfNull(address);
        var target = $"{address.Scheme}://{address.Authority}";
        return options?.Tls?.TargetNameOverride is { Length: > 0 } name ? $"{target} (TLS name {name})" : target;
    }

    private static SocketsHttpHandler Handler(GrpcConnectOptions options) => new()
    {
        ConnectTimeout = options.ConnectTimeout,
        EnableMultipleHttp2Connections = true,
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
    };

    private static GrpcChannel Create(Uri address, SocketsHttpHandler handler, GrpcConnectOptions options)
        => GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = options.MaxReceiveMessageSize,
            // Message sizes are the server's business; the client only bounds what it reads.
            MaxSendMessageSize = null,
        });

    private static async ValueTask<Stream> ConnectTcpAsync(string host, int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new DnsEndPoint(host, port), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async ValueTask<Stream> ConnectUnixSocketAsync(string socketPath, UnixDomainSocketEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            // .NET reports a missing socket file (ENOENT) as "Cannot assign requested address": say what it is.
            throw new IOException(e.SocketErrorCode switch
            {
                _ when !File.Exists(socketPath) => $"socket {socketPath} does not exist",
                SocketError.ConnectionRefused => $"nothing listens on socket {socketPath}",
                _ => $"socket {socketPath}: {e.Message}",
            }, e);
        }
        catch (OperationCanceledException)
        {
            socket.Dispose();
            throw;
        }
    }
}
