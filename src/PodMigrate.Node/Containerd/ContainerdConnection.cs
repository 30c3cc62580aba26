using System.Runtime.CompilerServices;
using Google.Protobuf;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using VersionApi = Containerd.Services.Version.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

public sealed class ContainerdConnectionOptions
{
    /// <summary>Deadline of a call that names none; long operations (pull, checkpoint, wait) pass their own.</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// One containerd endpoint seen through one namespace (and optionally one lease): the channel, the
/// <c>containerd-namespace</c> / <c>containerd-lease</c> headers, client-side deadlines, and the translation of
/// inbound <see cref="RpcException"/>s into <see cref="PodMigrateException"/>s. The service clients
/// (<see cref="ContainerdImages"/>, <see cref="ContainerdTasks"/>, ...) are thin typed views over it.
/// </summary>
public sealed class ContainerdConnection : IDisposable
{
    private static readonly Method<Empty, VersionApi.VersionResponse> VersionMethod =
        Method.FromDescriptor<Empty, VersionApi.VersionResponse>(VersionApi.VersionReflection.Descriptor.Services[0], "Version");

    private readonly GrpcChannel _channel;
    private readonly bool _ownsChannel;
    private readonly ContainerdConnectionOptions _options;

    public ContainerdConnection(GrpcChannel channel, string @namespace, ContainerdConnectionOptions? options = null)
        : this(channel, ownsChannel: false, @namespace, leaseId: null, options ?? new())
    {
    }

    private ContainerdConnection(GrpcChannel channel, bool ownsChannel, string @namespace, string? leaseId, ContainerdConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        _channel = channel;
        _ownsChannel = ownsChannel;
        _options = options;
        Namespace = @namespace;
        LeaseId = leaseId;
    }

    public string Namespace { get; }

    /// <summary>The lease every call of this view is made under (resources it creates are held by it), or null.</summary>
    public string? LeaseId { get; }

    public string Target => _channel.Target;

    internal TimeProvider TimeProvider => _options.TimeProvider;

    /// <summary>Connects to containerd's gRPC socket; the connection owns its channel.</summary>
    public static ContainerdConnection Open(string socketPath, string @namespace, ContainerdConnectionOptions? options = null)
        => new(GrpcChannel.ForUnixSocket(socketPath), ownsChannel: true, @namespace, leaseId: null, options ?? new());

    /// <summary>A view of the same channel in another namespace (the channel stays owned by this connection).</summary>
    public ContainerdConnection WithNamespace(string @namespace) => new(_channel, ownsChannel: false, @namespace, LeaseId, _options);

    /// <summary>A view of the same channel whose calls carry <c>containerd-lease: leaseId</c>.</summary>
    public ContainerdConnection WithLease(string leaseId)
    {
        ArgumentException.ThrowIfNullOrEmpty(leaseId);
        return new(_channel, ownsChannel: false, Namespace, leaseId, _options);
    }

    public async Task<ContainerdVersion> VersionAsync(CancellationToken cancellationToken)
    {
        var response = await UnaryAsync(VersionMethod, new Empty(), new ContainerdCall("getting the containerd version"), cancellationToken);
        return new ContainerdVersion(response.Version, response.Revision);
    }

    internal async Task<TResponse> UnaryAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, TRequest request, ContainerdCall call, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        try
        {
            return await _channel.UnaryAsync(method, request, CallOptionsFor(call, cancellationToken));
        }
        catch (RpcException e)
        {
            throw await TranslateAsync(e, call, cancellationToken);
        }
    }

    internal async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method, TRequest request, ContainerdCall call, [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        await using var messages = _channel.ServerStreamingAsync(method, request, CallOptionsFor(call, cancellationToken)).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await messages.MoveNextAsync();
            }
            catch (RpcException e)
            {
                throw await TranslateAsync(e, call, cancellationToken);
            }
            if (!more)
            {
                yield break;
            }
            yield return messages.Current;
        }
    }

    /// <summary>A call streaming both ways (e.g. Content.Write); its failures come out as <see cref="PodMigrateException"/>s.</summary>
    internal ContainerdDuplexCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(
        Method<TRequest, TResponse> method, ContainerdCall call, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
        => new(_channel.DuplexStreaming(method, CallOptionsFor(call, cancellationToken)), call, cancellationToken);

    /// <summary>Closes the channel if this is the connection that opened it; views made from it must not be used afterwards.</summary>
    public void Dispose()
    {
        if (_ownsChannel)
        {
            _channel.Dispose();
        }
    }

    private CallOptions CallOptionsFor(ContainerdCall call, CancellationToken cancellationToken)
    {
        var headers = new Metadata().Add("containerd-namespace", Namespace);
        if (LeaseId is not null)
        {
            headers.Add("containerd-lease", LeaseId);
        }
        var timeout = call.Timeout ?? _options.DefaultTimeout;
        DateTime? deadline = timeout == Timeout.InfiniteTimeSpan ? null : _options.TimeProvider.GetUtcNow().UtcDateTime + timeout;
        return new CallOptions(headers, deadline, cancellationToken);
    }

    internal static async Task<Exception> TranslateAsync(RpcException e, ContainerdCall call, CancellationToken cancellationToken)
    {
        if (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            return new OperationCanceledException($"{call.Doing}: cancelled", e, cancellationToken);
        }
        // containerd answers Unknown for state conflicts ("cannot delete a running process") and for real failures
        // alike; the call site knows which state to look at to tell them apart.
        if (e.StatusCode == StatusCode.Unknown && call.ClassifyUnknown is not null)
        {
            ErrorKind kind;
            using (var probe = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            {
                try
                {
                    kind = await call.ClassifyUnknown(probe.Token);
                }
                catch (Exception probeError) when (probeError is PodMigrateException or OperationCanceledException)
                {
                    kind = ErrorKind.Internal;
                }
            }
            return new PodMigrateException(kind, $"{call.Doing}: {e.Status.Detail}", e);
        }
        return ErrorMapping.ToException(e, call.Doing);
    }
}

/// <summary>A duplex call whose inbound <see cref="RpcException"/>s are translated like every other containerd call's.</summary>
internal sealed class ContainerdDuplexCall<TRequest, TResponse>(
    GrpcDuplexStreamingCall<TRequest, TResponse> call, ContainerdCall what, CancellationToken cancellationToken) : IDisposable
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    public async Task WriteAsync(TRequest message)
    {
        try
        {
            await call.WriteAsync(message);
        }
        catch (RpcException e)
        {
            throw await ContainerdConnection.TranslateAsync(e, what, cancellationToken);
        }
    }

    public void CompleteRequests() => call.CompleteRequests();

    public async ValueTask<TResponse?> ReadNextAsync()
    {
        try
        {
            return await call.ReadNextAsync();
        }
        catch (RpcException e)
        {
            throw await ContainerdConnection.TranslateAsync(e, what, cancellationToken);
        }
    }

    public void Dispose() => call.Dispose();
}

/// <summary>What one call is doing (for error messages), its deadline, and how to classify an Unknown answer.</summary>
/// <param name="Doing">e.g. "checkpointing task ctr1"; prefixes the error message.</param>
/// <param name="Timeout">null = the connection's default; <see cref="Timeout.InfiniteTimeSpan"/> = none (the token only).</param>
/// <param name="ClassifyUnknown">Looks at the object's state after an Unknown status and names the kind (e.g. FailedPrecondition when the task is not in the state the call needs).</param>
internal readonly record struct ContainerdCall(string Doing, TimeSpan? Timeout = null, Func<CancellationToken, Task<ErrorKind>>? ClassifyUnknown = null);

public sealed record ContainerdVersion(string Version, string Revision);
