using System.Runtime.CompilerServices;
using Grpc.Core;
using Grpc.Net.Client;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;

namespace PodMigrate.Agent.V1;

/// <summary>
/// A typed client of one node agent over the generated <see cref="AgentService.AgentServiceClient"/>. Remote statuses
/// come back as <see cref="PodMigrateException"/>s of the matching kind (translated in one place, <see cref="Translate"/>),
/// so callers handle the agent's errors like their own; a call cancelled by the caller's token is an
/// <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class AgentClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly AgentService.AgentServiceClient _client;

    private AgentClient(GrpcChannel channel, string target)
    {
        _channel = channel;
        _client = new AgentService.AgentServiceClient(channel);
        Target = target;
    }

    /// <summary>Where the calls go, e.g. "unix:/run/podmigrate/agent.sock", "https://10.0.0.7:7440 (TLS name node-a)".</summary>
    public string Target { get; }

    /// <summary>
    /// Connects to an agent: "unix:/run/podmigrate/agent.sock" (or a plain absolute path), "http://host:port" (cleartext),
    /// or "https://host:port" with <see cref="GrpcConnectOptions.Tls"/> in <paramref name="options"/> (mutual TLS).
    /// </summary>
    public static AgentClient Connect(string address, GrpcConnectOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        try
        {
            if (address.StartsWith("unix:", StringComparison.Ordinal) || address.StartsWith('/'))
            {
                var path = address.StartsWith('/') ? address : "/" + address["unix:".Length..].TrimStart('/');
                return new AgentClient(GrpcChannels.ForUnixSocket(path, options), $"unix:{path}");
            }
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            {
                return new AgentClient(GrpcChannels.ForAddress(uri, options), GrpcChannels.Describe(uri, options));
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
        => UnaryAsync(o => _client.GetNodeInfoAsync(new GetNodeInfoRequest(), o), "getting node info", cancellationToken);

    public Task<HealthResponse> HealthAsync(CancellationToken cancellationToken)
        => UnaryAsync(o => _client.HealthAsync(new HealthRequest(), o), "checking health", cancellationToken);

    public Task<ListContainersResponse> ListContainersAsync(ListContainersRequest request, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.ListContainersAsync(request, o), "listing containers", cancellationToken);

    public IAsyncEnumerable<CheckpointEvent> CheckpointAsync(CheckpointRequest request, CancellationToken cancellationToken)
        => StreamAsync(o => _client.Checkpoint(request, o), "checkpointing", cancellationToken);

    public IAsyncEnumerable<RestoreEvent> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
        => StreamAsync(o => _client.Restore(request, o), $"restoring checkpoint {request.CheckpointId}", cancellationToken);

    /// <summary>The node's and opted-in containers' memory, one sample per interval, until cancelled.</summary>
    public IAsyncEnumerable<MemorySample> WatchMemoryAsync(WatchMemoryRequest request, CancellationToken cancellationToken)
        => StreamAsync(o => _client.WatchMemory(request, o), "watching memory", cancellationToken);

    /// <summary>Resumes a held source; with <paramref name="checkpointId"/>, only one held for that checkpoint.</summary>
    public Task<ResumeResponse> ResumeAsync(ContainerSelector container, CancellationToken cancellationToken, string? checkpointId = null)
        => UnaryAsync(o => _client.ResumeAsync(new ResumeRequest { Container = container, CheckpointId = checkpointId ?? "" }, o), "resuming", cancellationToken);

    /// <summary>Discards a held source; with <paramref name="checkpointId"/>, only one held for that checkpoint.</summary>
    public Task<DiscardResponse> DiscardAsync(ContainerSelector container, CancellationToken cancellationToken, string? checkpointId = null)
        => UnaryAsync(o => _client.DiscardAsync(new DiscardRequest { Container = container, CheckpointId = checkpointId ?? "" }, o), "discarding", cancellationToken);

    public Task<HoldInfo> GetHoldAsync(ContainerSelector container, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.GetHoldAsync(new GetHoldRequest { Container = container }, o), "asking what holds the container", cancellationToken);

    public Task<ListCheckpointsResponse> ListCheckpointsAsync(ListCheckpointsRequest request, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.ListCheckpointsAsync(request, o), "listing checkpoints", cancellationToken);

    public Task<CheckpointInfo> InspectCheckpointAsync(string checkpointId, bool verify, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.InspectCheckpointAsync(new InspectCheckpointRequest { CheckpointId = checkpointId, Verify = verify }, o), $"inspecting checkpoint {checkpointId}", cancellationToken);

    public Task<DeleteCheckpointResponse> DeleteCheckpointAsync(string checkpointId, bool force, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.DeleteCheckpointAsync(new DeleteCheckpointRequest { CheckpointId = checkpointId, Force = force }, o), $"deleting checkpoint {checkpointId}", cancellationToken);

    public Task<PreparedCheckpointInfo> PrepareRestoreAsync(PrepareRestoreRequest request, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.PrepareRestoreAsync(request, o), $"preparing checkpoint {request.CheckpointId}", cancellationToken);

    public Task<ReleasePreparedResponse> ReleasePreparedAsync(string checkpointId, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.ReleasePreparedAsync(new ReleasePreparedRequest { CheckpointId = checkpointId }, o), $"releasing prepared checkpoint {checkpointId}", cancellationToken);

    public Task<RestoredInfo> GetRestoredAsync(string checkpointId, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.GetRestoredAsync(new GetRestoredRequest { CheckpointId = checkpointId }, o), $"reading the restore record of checkpoint {checkpointId}", cancellationToken);

    /// <summary>Starts an agent-owned operation, or attaches to the one the agent knows under the same id.</summary>
    public Task<Operation> StartOperationAsync(StartOperationRequest request, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.StartOperationAsync(request, o), $"starting operation {request.OperationId}", cancellationToken);

    public Task<Operation> GetOperationAsync(string operationId, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.GetOperationAsync(new GetOperationRequest { OperationId = operationId }, o), $"reading operation {operationId}", cancellationToken);

    /// <summary>The operation now and at every change; ends with the done one. Stopping the enumeration leaves the operation running.</summary>
    public IAsyncEnumerable<Operation> WatchOperationAsync(string operationId, CancellationToken cancellationToken)
        => StreamAsync(o => _client.WatchOperation(new GetOperationRequest { OperationId = operationId }, o), $"watching operation {operationId}", cancellationToken);

    public Task<Operation> CancelOperationAsync(string operationId, CancellationToken cancellationToken)
        => UnaryAsync(o => _client.CancelOperationAsync(new CancelOperationRequest { OperationId = operationId }, o), $"cancelling operation {operationId}", cancellationToken);

    public Task<ListOperationsResponse> ListOperationsAsync(CancellationToken cancellationToken)
        => UnaryAsync(o => _client.ListOperationsAsync(new ListOperationsRequest(), o), "listing operations", cancellationToken);

    /// <summary>
    /// Watches an operation to its end (progress to <paramref name="progress"/>) and returns it done and succeeded; a failed
    /// one is thrown as the error the blocking call would have ended with (<see cref="Outcome"/>).
    /// </summary>
    public async Task<Operation> AwaitOperationAsync(string operationId, Action<Operation>? progress, CancellationToken cancellationToken)
    {
        await foreach (var snapshot in WatchOperationAsync(operationId, cancellationToken))
        {
            if (snapshot.Done)
            {
                return Outcome(snapshot);
            }
            progress?.Invoke(snapshot);
        }
        throw new PodMigrateException(ErrorKind.Unavailable, $"the agent at {Target} ended the watch of operation {operationId} before its end");
    }

    /// <summary>A done operation as it ended: itself when it succeeded, else its error as a <see cref="PodMigrateException"/> of the matching kind.</summary>
    public static Operation Outcome(Operation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        if (operation.Error is { } error)
        {
            throw new PodMigrateException(ErrorMapping.ToErrorKind((StatusCode)error.Code), $"operation {operation.OperationId} ({operation.Description}): {error.Message}");
        }
        return operation;
    }

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

    private async Task<TResponse> UnaryAsync<TResponse>(Func<CallOptions, AsyncUnaryCall<TResponse>> start, string doing, CancellationToken cancellationToken)
    {
        try
        {
            using var call = start(new CallOptions(cancellationToken: cancellationToken));
            return await call.ResponseAsync;
        }
        catch (RpcException e)
        {
            throw Translate(e, doing, cancellationToken);
        }
        catch (ObjectDisposedException e)
        {
            throw new PodMigrateException(ErrorKind.Unavailable, $"{doing} on the agent at {Target}: the client was closed", e);
        }
    }

    private async IAsyncEnumerable<TResponse> StreamAsync<TResponse>(
        Func<CallOptions, AsyncServerStreamingCall<TResponse>> start, string doing, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Disposing the call before its end (the caller stopped enumerating) cancels it.
        using var call = start(new CallOptions(cancellationToken: cancellationToken));
        while (true)
        {
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken))
                {
                    yield break;
                }
            }
            catch (RpcException e)
            {
                throw Translate(e, doing, cancellationToken);
            }
            yield return call.ResponseStream.Current;
        }
    }

    /// <summary>
    /// The client edge: the caller's cancellation stays a cancellation; everything else is <see cref="ErrorMapping.ToException"/>'s,
    /// as for every client of ours (a call that never reached the agent is Unavailable with the transport's reason).
    /// </summary>
    private Exception Translate(RpcException e, string doing, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return new OperationCanceledException($"{doing} on the agent at {Target}: cancelled", e, cancellationToken);
        }
        return ErrorMapping.ToException(e, $"{doing} on the agent at {Target}");
    }
}
