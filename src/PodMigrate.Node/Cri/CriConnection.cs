using Grpc.Core;
using Grpc.Net.Client;
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
        return new CriConnection(GrpcChannels.ForUnixSocket(socketPath), $"unix:{socketPath}", time ?? TimeProvider.System);
    }

    /// <summary>What the generated CRI clients are made on.</summary>
    internal CallInvoker Invoker => _channel.CreateCallInvoker();

    internal async Task<TResponse> CallAsync<TResponse>(
        string rpc, Func<CallOptions, AsyncUnaryCall<TResponse>> start, TimeSpan timeout, string subject, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow().UtcDateTime + timeout;
        try
        {
            using var call = start(new CallOptions(deadline: deadline, cancellationToken: cancellationToken));
            return await call.ResponseAsync;
        }
        catch (RpcException e)
        {
            throw ErrorMapping.ToException(e, $"CRI {rpc} {subject} on {Target}");
        }
    }

    public void Dispose() => _channel.Dispose();
}
