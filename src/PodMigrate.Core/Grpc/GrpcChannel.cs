using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

public sealed class GrpcChannelOptions
{
    /// <summary>Largest message accepted from the server; a larger one fails the call with ResourceExhausted.</summary>
    public int MaxReceiveMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>Deadline for establishing the connection (unix socket or TCP connect + HTTP/2 preface).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// A gRPC client connection over HTTP/2 cleartext with prior knowledge, to a unix socket or a TCP address
/// (the role of Grpc.Net.Client.GrpcChannel + CallInvoker). Thread-safe; share one per endpoint.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private GrpcChannel()
    {
    }

    /// <summary>Target description for messages, e.g. "unix:/run/containerd.sock" or "http://127.0.0.1:7443".</summary>
    public string Target { get; private init; } = "";

    public static GrpcChannel ForUnixSocket(string socketPath, GrpcChannelOptions? options = null) => throw new NotImplementedException();

    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null) => throw new NotImplementedException();

    /// <summary>A unary call; throws <see cref="RpcException"/> on a non-OK status.</summary>
    public Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
        => throw new NotImplementedException();

    /// <summary>
    /// A server-streaming call: messages as they arrive; throws <see cref="RpcException"/> (after the messages
    /// that came before it) when the call ends with a non-OK status. Disposing the enumerator early cancels the call.
    /// </summary>
    public IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
        => throw new NotImplementedException();

    public void Dispose()
    {
    }
}
