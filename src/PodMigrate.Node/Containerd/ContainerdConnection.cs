using System.Runtime.CompilerServices;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
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
/// One containerd endpoint seen through one namespace (and optionally one lease): a grpc-dotnet channel to the unix
/// socket, the <c>containerd-namespace</c> / <c>containerd-lease</c> headers (an interceptor on <see cref="Invoker"/>),
/// client-side deadlines, and the translation of inbound <see cref="RpcException"/>s into <see cref="PodMigrateException"/>s.
/// The service clients (<see cref="ContainerdImages"/>, <see cref="ContainerdTasks"/>, ...) are thin typed views over
/// the generated clients made on <see cref="Invoker"/>.
/// </summary>
public sealed class ContainerdConnection : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly bool _ownsChannel;
    private readonly ContainerdConnectionOptions _options;

    private ContainerdConnection(GrpcChannel channel, string target, bool ownsChannel, string @namespace, string? leaseId, ContainerdConnectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        _channel = channel;
        _ownsChannel = ownsChannel;
        _options = options;
        Target = target;
        Namespace = @namespace;
        LeaseId = leaseId;
        Invoker = channel.Intercept(new ContainerdHeadersInterceptor(@namespace, leaseId));
    }

    public string Namespace { get; }

    /// <summary>The lease every call of this view is made under (resources it creates are held by it), or null.</summary>
    public string? LeaseId { get; }

    public string Target { get; }

    /// <summary>The channel with this view's headers: what the generated clients are made on.</summary>
    internal CallInvoker Invoker { get; }

    internal TimeProvider TimeProvider => _options.TimeProvider;

    /// <summary>Connects to containerd's gRPC socket; the connection owns its channel.</summary>
    public static ContainerdConnection Open(string socketPath, string @namespace, ContainerdConnectionOptions? options = null)
        => new(GrpcChannels.ForUnixSocket(socketPath), $"unix:{socketPath}", ownsChannel: true, @namespace, leaseId: null, options ?? new());

    /// <summary>A view of the same channel in another namespace (the channel stays owned by this connection).</summary>
    public ContainerdConnection WithNamespace(string @namespace) => new(_channel, Target, ownsChannel: false, @namespace, LeaseId, _options);

    /// <summary>A view of the same channel whose calls carry <c>containerd-lease: leaseId</c>.</summary>
    public ContainerdConnection WithLease(string leaseId)
    {
        ArgumentException.ThrowIfNullOrEmpty(leaseId);
        return new(_channel, Target, ownsChannel: false, Namespace, leaseId, _options);
    }

    public async Task<ContainerdVersion> VersionAsync(CancellationToken cancellationToken)
    {
        var client = new VersionApi.Version.VersionClient(Invoker);
        var response = await UnaryAsync(o => client.VersionAsync(new Empty(), o), new ContainerdCall("getting the containerd version"), cancellationToken);
        return new ContainerdVersion(response.Version, response.Revision);
    }

    internal async Task<TResponse> UnaryAsync<TResponse>(Func<CallOptions, AsyncUnaryCall<TResponse>> start, ContainerdCall call, CancellationToken cancellationToken)
    {
        var (options, deadline) = CallOptionsFor(call, cancellationToken);
        try
        {
            using var pending = start(options);
            return await pending.ResponseAsync;
        }
        catch (RpcException e)
        {
            throw await TranslateAsync(e, call, deadline, TimeProvider, cancellationToken);
        }
    }

    internal async IAsyncEnumerable<TResponse> ServerStreamingAsync<TResponse>(
        Func<CallOptions, AsyncServerStreamingCall<TResponse>> start, ContainerdCall call, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (options, deadline) = CallOptionsFor(call, cancellationToken);
        using var pending = start(options);
        while (true)
        {
            bool more;
            try
            {
                more = await pending.ResponseStream.MoveNext(cancellationToken);
            }
            catch (RpcException e)
            {
                throw await TranslateAsync(e, call, deadline, TimeProvider, cancellationToken);
            }
            if (!more)
            {
                yield break;
            }
            yield return pending.ResponseStream.Current;
        }
    }

    /// <summary>A call streaming both ways (e.g. Content.Write); its failures come out as <see cref="PodMigrateException"/>s.</summary>
    internal ContainerdDuplexCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(
        Func<CallOptions, AsyncDuplexStreamingCall<TRequest, TResponse>> start, ContainerdCall call, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
    {
        var (options, deadline) = CallOptionsFor(call, cancellationToken);
        return new(start(options), e => TranslateAsync(e, call, deadline, TimeProvider, cancellationToken), cancellationToken);
    }

    /// <summary>Closes the channel if this is the connection that opened it; views made from it must not be used afterwards.</summary>
    public void Dispose()
    {
        if (_ownsChannel)
        {
            _channel.Dispose();
        }
    }

    private (CallOptions Options, DateTime? Deadline) CallOptionsFor(ContainerdCall call, CancellationToken cancellationToken)
    {
        var timeout = call.Timeout ?? _options.DefaultTimeout;
        DateTime? deadline = timeout == Timeout.InfiniteTimeSpan ? null : _options.TimeProvider.GetUtcNow().UtcDateTime + timeout;
        return (new CallOptions(deadline: deadline, cancellationToken: cancellationToken), deadline);
    }

    private static async Task<Exception> TranslateAsync(RpcException e, ContainerdCall call, DateTime? deadline, TimeProvider time, CancellationToken cancellationToken)
    {
        if (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            return new OperationCanceledException($"{call.Doing}: cancelled", e, cancellationToken);
        }
        // The deadline wins over whatever containerd said when it passed: it answers Unknown "context deadline exceeded".
        if (e.StatusCode != StatusCode.DeadlineExceeded && deadline is { } d && time.GetUtcNow().UtcDateTime >= d)
        {
            return new PodMigrateException(ErrorKind.DeadlineExceeded, $"{call.Doing}: deadline exceeded ({e.Status.Detail})", e);
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

/// <summary>Every call of a view names its namespace (containerd refuses calls without one) and its lease, if any.</summary>
internal sealed class ContainerdHeadersInterceptor(string @namespace, string? leaseId) : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    private ClientInterceptorContext<TRequest, TResponse> WithHeaders<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class
        where TResponse : class
    {
        var headers = new Metadata { { "containerd-namespace", @namespace } };
        if (leaseId is not null)
        {
            headers.Add("containerd-lease", leaseId);
        }
        foreach (var entry in context.Options.Headers ?? [])
        {
            headers.Add(entry);
        }
        return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
    }
}

/// <summary>A duplex call whose inbound <see cref="RpcException"/>s are translated like every other containerd call's.</summary>
internal sealed class ContainerdDuplexCall<TRequest, TResponse>(
    AsyncDuplexStreamingCall<TRequest, TResponse> call, Func<RpcException, Task<Exception>> translate, CancellationToken cancellationToken) : IDisposable
    where TRequest : class
    where TResponse : class
{
    public async Task WriteAsync(TRequest message)
    {
        try
        {
            await call.RequestStream.WriteAsync(message, cancellationToken);
        }
        catch (RpcException e)
        {
            throw await translate(e);
        }
        catch (InvalidOperationException) when (call.GetStatus() is { StatusCode: not StatusCode.OK } status)
        {
            // The server ended the call (grpc-dotnet refuses writes after that): its status says why.
            throw await translate(new RpcException(status));
        }
    }

    public async Task CompleteRequestsAsync()
    {
        try
        {
            await call.RequestStream.CompleteAsync();
        }
        catch (RpcException e)
        {
            throw await translate(e);
        }
    }

    public async ValueTask<TResponse?> ReadNextAsync()
    {
        try
        {
            return await call.ResponseStream.MoveNext(cancellationToken) ? call.ResponseStream.Current : null;
        }
        catch (RpcException e)
        {
            throw await translate(e);
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
