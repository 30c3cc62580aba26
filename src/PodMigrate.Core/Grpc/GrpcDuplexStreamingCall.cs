using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// A call in progress that streams both ways (the role of Grpc.Core.AsyncDuplexStreamingCall): requests are written
/// one at a time, the request stream is completed, responses are read until the end. Failures are <see cref="RpcException"/>s
/// carrying the call's status. Disposing it before the end cancels the call.
/// </summary>
public sealed class GrpcDuplexStreamingCall<TRequest, TResponse> : IDisposable
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    private readonly GrpcClientCall<TRequest, TResponse> _call;

    internal GrpcDuplexStreamingCall(GrpcClientCall<TRequest, TResponse> call) => _call = call;

    /// <summary>Sends one request; returns once it is handed to the connection (HTTP/2 flow control may hold it).</summary>
    public Task WriteAsync(TRequest message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return _call.WriteAsync(message);
    }

    /// <summary>Tells the server no more requests come.</summary>
    public void CompleteRequests() => _call.CompleteRequests();

    /// <summary>The next response; null at the end of an OK call; throws the call's non-OK status after the last response.</summary>
    public ValueTask<TResponse?> ReadNextAsync() => _call.ReadNextAsync();

    public void Dispose() => _call.Dispose();
}
