using Google.Protobuf;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;

namespace PodMigrate.Node.Cri;

/// <summary>
/// A connection to a node's CRI endpoint (containerd's CRI plugin serves it on containerd's own socket).
/// Every call has a client-side deadline; a failed call surfaces as a <see cref="PodMigrateException"/>
/// naming the RPC and the endpoint. Share one per endpoint; it owns its channel.
/// </summary>
public sealed class CriConnection : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly TimeProvider _time;

    private CriConnection(GrpcChannel channel, string target, TimeProvider time)
    {
        _channel = channel;
        _time = time;
        Target = target;
        Runtime = new CriRuntimeService(this);
        Images = new CriImageService(this);
    }

    /// <summary>Where the calls go, e.g. "unix:/run/podmigrate/node-a/containerd.sock".</summary>
    public string Target { get; }

    public CriRuntimeService Runtime { get; }

    public CriImageService Images { get; }

    public static CriConnection ForUnixSocket(string socketPath, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        return new CriConnection(GrpcChannel.ForUnixSocket(socketPath), $"unix:{socketPath}", time ?? TimeProvider.System);
    }

    internal async Task<TResponse> CallAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, TRequest request, TimeSpan timeout, string subject, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        var deadline = _time.GetUtcNow().UtcDateTime + timeout;
        try
        {
            return await _channel.UnaryAsync(method, request, new CallOptions(Deadline: deadline, CancellationToken: cancellationToken));
        }
        catch (RpcException e)
        {
            throw ErrorMapping.ToException(e, $"CRI {method.Name} {subject} on {Target}");
        }
    }

    public void Dispose() => _channel.Dispose();
}
