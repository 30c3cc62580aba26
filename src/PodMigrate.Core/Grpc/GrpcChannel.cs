using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

public sealed class GrpcChannelOptions
{
    /// <summary>Largest message accepted from the server; a larger one fails the call with ResourceExhausted.</summary>
    public int MaxReceiveMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>Deadline for establishing the connection (unix socket or TCP connect + HTTP/2 preface).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock deadlines are measured with.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Transport security of a TCP channel: an https:// address needs <see cref="SslCredentials"/>, an http:// address
    /// takes none (or <see cref="ChannelCredentials.Insecure"/>). Unix sockets are always cleartext.
    /// </summary>
    public ChannelCredentials? Credentials { get; init; }
}

/// <summary>
/// A gRPC client connection over HTTP/2 to a unix socket or a TCP address, cleartext with prior knowledge or TLS
/// (the role of Grpc.Net.Client.GrpcChannel + CallInvoker). Thread-safe; share one per endpoint.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private int _disposed;

    private GrpcChannel(SocketsHttpHandler handler, Uri baseAddress, string target, GrpcChannelOptions? options)
    {
        Options = options ?? new GrpcChannelOptions();
        Target = target;
        handler.ConnectTimeout = Options.ConnectTimeout;
        handler.EnableMultipleHttp2Connections = true;
        handler.UseProxy = false;
        handler.UseCookies = false;
        handler.AllowAutoRedirect = false;
        // Calls end by their own deadlines; HttpClient's 100 s default would cut long waits and streams.
        Client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Target description for messages, e.g. "unix:/run/containerd.sock", "http://127.0.0.1:7443", "https://10.0.0.7:7440 (TLS name node-a)".</summary>
    public string Target { get; }

    /// <summary>Whether the connection is TLS.</summary>
    public bool IsSecure { get; private init; }

    internal bool IsCleartextTcp { get; private init; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal GrpcChannelOptions Options { get; }

    internal HttpClient Client { get; }

    public static GrpcChannel ForUnixSocket(string socketPath, GrpcChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        if (options?.Credentials is SslCredentials)
        {
            throw new ArgumentException($"unix socket {socketPath}: TLS credentials are for TCP addresses; a unix socket is guarded by its file permissions", nameof(options));
        }
        var endPoint = new UnixDomainSocketEndPoint(socketPath);
        var handler = new SocketsHttpHandler { ConnectCallback = (_, cancellationToken) => ConnectUnixSocketAsync(socketPath, endPoint, cancellationToken) };
        // The authority is only a header here: every connection goes to the socket.
        return new GrpcChannel(handler, new Uri("http://localhost"), $"unix:{socketPath}", options);
    }

    /// <summary>
    /// A TCP channel: http://host:port is HTTP/2 cleartext; https://host:port is TLS and needs <see cref="SslCredentials"/>
    /// in <paramref name="options"/> (there is no fallback to the system's trust store).
    /// </summary>
    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"a gRPC address is http://host:port (h2c) or https://host:port, not {address}", nameof(address));
        }
        var handler = new SocketsHttpHandler();
        var target = $"{address.Scheme}://{address.Authority}";
        if (address.Scheme == Uri.UriSchemeHttp)
        {
            if (options?.Credentials is SslCredentials)
            {
                throw new ArgumentException($"{target}: TLS credentials need an https:// address", nameof(options));
            }
            return new GrpcChannel(handler, address, target, options) { IsCleartextTcp = true };
        }
        if (options?.Credentials is not SslCredentials ssl)
        {
            throw new ArgumentException($"{target}: an https:// address needs TLS credentials (the CAs to trust, and a client certificate for mutual TLS)", nameof(options));
        }
        handler.SslOptions = ssl.ToClientOptions();
        var channel = new GrpcChannel(handler, address, ssl.TargetNameOverride is { Length: > 0 } name ? $"{target} (TLS name {name})" : target, options) { IsSecure = true };
        if (ssl.TargetNameOverride is { Length: > 0 } serverName)
        {
            // SocketsHttpHandler takes the TLS target host (SNI and the name checked against the certificate) from the
            // Host header: the connection still goes to the address, the certificate must name serverName.
            channel.Client.DefaultRequestHeaders.Host = $"{serverName}:{address.Port}";
        }
        return channel;
    }

    /// <summary>A unary call; throws <see cref="RpcException"/> on a non-OK status.</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(request);
        using var call = new GrpcClientCall<TRequest, TResponse>(this, method, options, CancellationToken.None);
        await call.StartAsync(request);
        return await call.ReadSingleAsync();
    }

    /// <summary>
    /// A server-streaming call: messages as they arrive; throws <see cref="RpcException"/> (after the messages
    /// that came before it) when the call ends with a non-OK status. Disposing the enumerator early cancels the call.
    /// The call starts when the enumeration does.
    /// </summary>
    public IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(request);
        return StreamAsync(method, request, options, CancellationToken.None);
    }

    /// <summary>
    /// A call that streams both ways: request messages are written while responses are read (HTTP/2 full duplex).
    /// The call starts at once; dispose it to end it (before its end, that cancels it).
    /// </summary>
    public GrpcDuplexStreamingCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.Type != MethodType.DuplexStreaming)
        {
            throw new ArgumentException($"{method.FullName} is a {method.Type} method, not a duplex one", nameof(method));
        }
        var call = new GrpcClientCall<TRequest, TResponse>(this, method, options, CancellationToken.None);
        call.StartStreaming();
        return new GrpcDuplexStreamingCall<TRequest, TResponse>(call);
    }

    private async IAsyncEnumerable<TResponse> StreamAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, TRequest request, CallOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        using var call = new GrpcClientCall<TRequest, TResponse>(this, method, options, cancellationToken);
        await call.StartAsync(request);
        while (await call.ReadNextAsync() is { } message)
        {
            yield return message;
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
            throw new UnixSocketConnectException(e.SocketErrorCode switch
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

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Client.Dispose();
        }
    }
}

/// <summary>Why a unix socket connect failed, in words that name the socket.</summary>
internal sealed class UnixSocketConnectException(string message, Exception innerException) : IOException(message, innerException);
