using System.Runtime.CompilerServices;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;

namespace PodMigrate.Agent.V1;

/// <summary>
/// A typed client of one node agent. Remote statuses come back as <see cref="PodMigrateException"/>s of the matching
/// kind, so callers handle the agent's errors like their own.
/// </summary>
public sealed class AgentClient : IDisposable
{
    private readonly GrpcChannel _channel;

    private AgentClient(GrpcChannel channel) => _channel = channel;

    public string Target => _channel.Target;

    /// <summary>
    /// Connects to an agent: "unix:/run/podmigrate/agent.sock" (or a plain absolute path), "http://host:port" (cleartext),
    /// or "https://host:port" with <see cref="SslCredentials"/> in <paramref name="options"/> (mutual TLS).
    /// </summary>
    public static AgentClient Connect(string address, GrpcChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        try
        {
            if (address.StartsWith("unix:", StringComparison.Ordinal))
            {
                return new AgentClient(GrpcChannel.ForUnixSocket("/" + address["unix:".Length..].TrimStart('/'), options));
            }
            if (address.StartsWith('/'))
            {
                return new AgentClient(GrpcChannel.ForUnixSocket(address, options));
            }
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            {
                return new AgentClient(GrpcChannel.ForAddress(uri, options));
            }
        }
        catch (ArgumentException e)
        {
            // The channel's objections (credentials that do not fit the scheme) are the caller's mistake: say so as one.
            throw PodMigrateException.InvalidArgument($"agent {address}: {e.Message}");
        }
        throw PodMigrateException.InvalidArgument($"'{address}' is not an agent address: use unix:/path/agent.sock, http://host:port or https://host:port");
    }

    public Task<NodeInfo> GetNodeInfoAsync(CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.GetNodeInfo, new GetNodeInfoRequest(), "getting node info", cancellationToken);

    public Task<HealthResponse> HealthAsync(CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.Health, new HealthRequest(), "checking health", cancellationToken);

    public Task<ListContainersResponse> ListContainersAsync(ListContainersRequest request, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.ListContainers, request, "listing containers", cancellationToken);

    public IAsyncEnumerable<CheckpointEvent> CheckpointAsync(CheckpointRequest request, CancellationToken cancellationToken)
        => StreamAsync(AgentMethods.Checkpoint, request, "checkpointing", cancellationToken);

    public IAsyncEnumerable<RestoreEvent> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
        => StreamAsync(AgentMethods.Restore, request, $"restoring checkpoint {request.CheckpointId}", cancellationToken);

    public Task<ResumeResponse> ResumeAsync(ContainerSelector container, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.Resume, new ResumeRequest { Container = container }, "resuming", cancellationToken);

    public Task<DiscardResponse> DiscardAsync(ContainerSelector container, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.Discard, new DiscardRequest { Container = container }, "discarding", cancellationToken);

    public Task<ListCheckpointsResponse> ListCheckpointsAsync(ListCheckpointsRequest request, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.ListCheckpoints, request, "listing checkpoints", cancellationToken);

    public Task<CheckpointInfo> InspectCheckpointAsync(string checkpointId, bool verify, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.InspectCheckpoint, new InspectCheckpointRequest { CheckpointId = checkpointId, Verify = verify }, $"inspecting checkpoint {checkpointId}", cancellationToken);

    public Task<DeleteCheckpointResponse> DeleteCheckpointAsync(string checkpointId, bool force, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.DeleteCheckpoint, new DeleteCheckpointRequest { CheckpointId = checkpointId, Force = force }, $"deleting checkpoint {checkpointId}", cancellationToken);

    public Task<PreparedCheckpointInfo> PrepareRestoreAsync(PrepareRestoreRequest request, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.PrepareRestore, request, $"preparing checkpoint {request.CheckpointId}", cancellationToken);

    public Task<ReleasePreparedResponse> ReleasePreparedAsync(string checkpointId, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.ReleasePrepared, new ReleasePreparedRequest { CheckpointId = checkpointId }, $"releasing prepared checkpoint {checkpointId}", cancellationToken);

    public Task<RestoredInfo> GetRestoredAsync(string checkpointId, CancellationToken cancellationToken)
        => UnaryAsync(AgentMethods.GetRestored, new GetRestoredRequest { CheckpointId = checkpointId }, $"reading the restore record of checkpoint {checkpointId}", cancellationToken);

    /// <summary>Runs a checkpoint to its end; progress goes to <paramref name="progress"/>.</summary>
    public async Task<CheckpointResult> CheckpointToEndAsync(CheckpointRequest request, Action<Progress>? progress, CancellationToken cancellationToken)
    {
        await foreach (var e in CheckpointAsync(request, cancellationToken))
        {
            if (e.EventCase == CheckpointEvent.EventOneofCase.Result)
            {
                return e.Result;
            }
            progress?.Invoke(e.Progress);
        }
        throw new PodMigrateException(ErrorKind.Unavailable, $"the agent at {Target} ended the checkpoint without a result");
    }

    /// <summary>Runs a restore to its end; progress goes to <paramref name="progress"/>.</summary>
    public async Task<RestoreResult> RestoreToEndAsync(RestoreRequest request, Action<Progress>? progress, CancellationToken cancellationToken)
    {
        await foreach (var e in RestoreAsync(request, cancellationToken))
        {
            if (e.EventCase == RestoreEvent.EventOneofCase.Result)
            {
                return e.Result;
            }
            progress?.Invoke(e.Progress);
        }
        throw new PodMigrateException(ErrorKind.Unavailable, $"the agent at {Target} ended the restore without a result");
    }

    public void Dispose() => _channel.Dispose();

    private async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, string doing, CancellationToken cancellationToken)
        where TRequest : Google.Protobuf.IMessage<TRequest>, new()
        where TResponse : Google.Protobuf.IMessage<TResponse>, new()
    {
        try
        {
            return await _channel.UnaryAsync(method, request, new CallOptions(CancellationToken: cancellationToken));
        }
        catch (RpcException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{doing} on the agent at {Target}: cancelled", e, cancellationToken);
        }
        catch (RpcException e)
        {
            throw ErrorMapping.ToException(e, $"{doing} on the agent at {Target}");
        }
    }

    private async IAsyncEnumerable<TResponse> StreamAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, TRequest request, string doing, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : Google.Protobuf.IMessage<TRequest>, new()
        where TResponse : Google.Protobuf.IMessage<TResponse>, new()
    {
        var stream = _channel.ServerStreamingAsync(method, request, new CallOptions(CancellationToken: cancellationToken)).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                TResponse current;
                try
                {
                    if (!await stream.MoveNextAsync())
                    {
                        yield break;
                    }
                    current = stream.Current;
                }
                catch (RpcException e) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException($"{doing} on the agent at {Target}: cancelled", e, cancellationToken);
                }
                catch (RpcException e)
                {
                    throw ErrorMapping.ToException(e, $"{doing} on the agent at {Target}");
                }
                yield return current;
            }
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }
}
