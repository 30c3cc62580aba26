using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// One client call on the wire: sends the request frame (or, for a duplex call, request frames as they are written
/// while responses arrive), reads response frames as they arrive, and turns whatever ends the call (status, HTTP
/// error, reset stream, deadline, cancellation, lost connection) into an <see cref="RpcException"/>.
/// Disposing it before the end cancels the call, which resets the HTTP/2 stream.
/// </summary>
internal sealed class GrpcClientCall<TRequest, TResponse> : IDisposable
    where TRequest : Google.Protobuf.IMessage<TRequest>, new()
    where TResponse : Google.Protobuf.IMessage<TResponse>, new()
{
    private readonly GrpcChannel _channel;
    /// <summary>How long a failed request write waits for the status that explains it.</summary>
    private static readonly TimeSpan StatusWait = TimeSpan.FromSeconds(5);

    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly DateTime? _deadline;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private HttpRequestMessage? _request;
    private StreamingContent? _requestStream;
    private Task? _sending;
    private HttpResponseMessage? _response;
    private PipeReader? _reader;
    private (Status Status, Metadata Trailers)? _end;

    public GrpcClientCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions options, CancellationToken enumeratorToken)
    {
        _channel = channel;
        _method = method;
        _options = options;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            _deadline = deadline.Kind == DateTimeKind.Local ? deadline.ToUniversalTime() : deadline;
            var remaining = _deadline.Value - Now;
            // Beyond what a timer can hold (~49 days) the deadline is only sent, not timed locally.
            if (remaining < TimeSpan.FromDays(49))
            {
                _deadlineCts = new CancellationTokenSource(remaining < TimeSpan.Zero ? TimeSpan.Zero : remaining, channel.Options.TimeProvider);
            }
        }
        _callCts = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, enumeratorToken, _deadlineCts?.Token ?? default);
    }

    private DateTime Now => _channel.Options.TimeProvider.GetUtcNow().UtcDateTime;

    private bool DeadlinePassed => _deadline is { } deadline && Now >= deadline;

    public async Task StartAsync(TRequest request)
    {
        try
        {
            await SendAsync(new ByteArrayContent(GrpcFraming.ToFrame(request)));
        }
        catch (Exception e) when (IsCallFailure(e))
        {
            throw Translate(e);
        }
    }

    /// <summary>
    /// Starts a call whose request messages are written one by one (<see cref="WriteAsync"/>) while responses are
    /// read: the request goes out at once, the response headers are awaited by the first read.
    /// </summary>
    public void StartStreaming()
    {
        _requestStream = new StreamingContent();
        _sending = SendAsync(_requestStream);
    }

    /// <summary>Sends one request message of a streaming call; a call the server already ended throws its status.</summary>
    public async Task WriteAsync(TRequest message)
    {
        var content = _requestStream ?? throw new InvalidOperationException("the call was not started for streaming requests");
        try
        {
            var body = await content.Body.WaitAsync(_callCts.Token);
            // Streamed requests can be large (1 MiB chunks of a blob): frame them in a pooled buffer, not a new array each.
            var size = message.CalculateSize();
            var frame = ArrayPool<byte>.Shared.Rent(GrpcFraming.HeaderSize + size);
            try
            {
                var length = GrpcFraming.WriteFrame(frame, message, size);
                await body.WriteAsync(frame.AsMemory(0, length), _callCts.Token);
                await body.FlushAsync(_callCts.Token);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
            }
        }
        catch (Exception e) when (IsCallFailure(e) || e is ObjectDisposedException)
        {
            // HttpClient disposes the request body once the response has ended: the call is over, its status says why.
            throw await WriteFailureAsync(e);
        }
    }

    /// <summary>Ends the request stream of a streaming call (the server reads its end); responses can still be read.</summary>
    public void CompleteRequests()
        => (_requestStream ?? throw new InvalidOperationException("the call was not started for streaming requests")).Complete();

    /// <summary>The next message; default at the end of an OK call; throws the call's non-OK status after the last message.</summary>
    public async ValueTask<TResponse?> ReadNextAsync()
    {
        try
        {
            return await ReadNextCoreAsync();
        }
        catch (Exception e) when (IsCallFailure(e))
        {
            throw Translate(e);
        }
    }

    /// <summary>Exactly one message, then an OK status.</summary>
    public async Task<TResponse> ReadSingleAsync()
    {
        var response = await ReadNextAsync();
        if (response is null)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"{_method.FullName}: the server sent no response message"));
        }
        if (await ReadNextAsync() is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"{_method.FullName}: the server sent more than one response message to a unary call"));
        }
        return response;
    }

    private async Task SendAsync(HttpContent content)
    {
        if (DeadlinePassed)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "deadline exceeded before the call started"));
        }
        _request = new HttpRequestMessage(HttpMethod.Post, _method.FullName)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        _request.Content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        _request.Headers.TryAddWithoutValidation("te", "trailers");
        if (_deadline is { } deadline)
        {
            _request.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(deadline - Now));
        }
        foreach (var (key, value) in _options.Headers ?? [])
        {
            if (GrpcProtocol.IsReservedHeader(key) || !_request.Headers.TryAddWithoutValidation(key, value))
            {
                throw new ArgumentException($"\"{key}\" is reserved by the protocol and cannot be sent as metadata");
            }
        }

        _response = await _channel.Client.SendAsync(_request, HttpCompletionOption.ResponseHeadersRead, _callCts.Token);
        if (GrpcStatusReader.TryReadStatus(_response.Headers, out var status))
        {
            // Trailers-only: the status came in the headers, there is no body.
            _end = (status, GrpcStatusReader.ReadMetadata(_response.Headers));
            return;
        }
        if (_response.StatusCode != HttpStatusCode.OK || !GrpcProtocol.IsGrpcContentType(_response.Content.Headers.ContentType?.ToString()))
        {
            throw new RpcException(GrpcStatusReader.FromHttpResponse(_response), GrpcStatusReader.ReadMetadata(_response.Headers));
        }
        var body = await _response.Content.ReadAsStreamAsync(_callCts.Token);
        _reader = PipeReader.Create(body);
    }

    private async ValueTask<TResponse?> ReadNextCoreAsync()
    {
        if (_sending is not null)
        {
            // A streaming call: its response headers come in while requests go out.
            await _sending;
        }
        if (_end is null && _reader is not null)
        {
            var message = await GrpcFraming.ReadMessageAsync(_reader, _method.ResponseParser, _channel.Options.MaxReceiveMessageSize, _callCts.Token);
            if (message is not null)
            {
                return message;
            }
            // The body is over: the trailers are in.
            var trailers = _response!.TrailingHeaders;
            _end = GrpcStatusReader.TryReadStatus(trailers, out var trailerStatus)
                ? (trailerStatus, GrpcStatusReader.ReadMetadata(trailers))
                : (GrpcStatusReader.FromHttpResponse(_response), GrpcStatusReader.ReadMetadata(trailers));
        }
        var (status, metadata) = _end!.Value;
        return status.StatusCode == StatusCode.OK ? default : throw new RpcException(status, metadata);
    }

    /// <summary>
    /// A request write failed: when the server has already ended the call (it refused or failed the stream), its
    /// status says why; otherwise the write's own failure does.
    /// </summary>
    private async Task<RpcException> WriteFailureAsync(Exception writeFailure)
    {
        try
        {
            // The status is on its way when the server ended the call; a lost connection fails the start as well.
            if (_sending is { } sending)
            {
                await sending.WaitAsync(StatusWait, _channel.Options.TimeProvider, CancellationToken.None);
            }
            while (await ReadNextCoreAsync() is not null)
            {
            }
        }
        catch (Exception e) when (IsCallFailure(e))
        {
            return Translate(e);
        }
        catch (TimeoutException)
        {
            // No answer from the server: the write's own failure is all there is to say.
        }
        return Translate(writeFailure is ObjectDisposedException ? new IOException("the request stream was closed", writeFailure) : writeFailure);
    }

    private bool IsCallFailure(Exception e)
        => e is RpcException or OperationCanceledException or HttpRequestException or IOException
            || (e is ObjectDisposedException && _channel.IsDisposed);

    private RpcException Translate(Exception e)
    {
        // The deadline wins over whatever the server said when it passed (containerd answers Unknown "context deadline exceeded").
        if (DeadlinePassed || _deadlineCts?.IsCancellationRequested == true)
        {
            return e is RpcException { StatusCode: StatusCode.DeadlineExceeded } same
                ? same
                : new RpcException(new Status(StatusCode.DeadlineExceeded, $"deadline exceeded calling {_method.FullName} on {_channel.Target}"), (e as RpcException)?.Trailers ?? new Metadata(), e);
        }
        if (e is RpcException rpc)
        {
            return rpc;
        }
        if (_callCts.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, $"call {_method.FullName} cancelled"), new Metadata(), e);
        }
        if (_channel.IsDisposed)
        {
            // Its owner closed the channel (e.g. replaced it after the server moved): calls on it end, not hang.
            return new RpcException(new Status(StatusCode.Unavailable, $"the channel to {_channel.Target} was closed during {_method.FullName}"), new Metadata(), e);
        }
        var status = e switch
        {
            HttpProtocolException reset => new Status(GrpcProtocol.FromHttp2ErrorCode(reset.ErrorCode), $"{_channel.Target} reset the HTTP/2 stream of {_method.FullName} (error code {reset.ErrorCode})"),
            HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError }
                => new Status(StatusCode.Unavailable, $"cannot connect to {_channel.Target}: TLS handshake failed: {Innermost(e).Message}"),
            HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError }
                => new Status(StatusCode.Unavailable, $"cannot connect to {_channel.Target}: {ConnectFailure(e).Message}"),
            // Connected, but the HTTP/2 session never got going (the server hung up before its first frame; how the
            // connection broke varies with timing). Over TLS 1.3 that is how a server refuses the client's certificate:
            // the client's side of the handshake is already done when the server checks it. In cleartext, it is how a
            // TLS server treats an h2c preface.
            HttpRequestException or IOException when _response is null && _channel.IsSecure
                => new Status(StatusCode.Unavailable, $"{_channel.Target} closed the connection after the TLS handshake, before answering {_method.FullName}: " +
                    $"it most likely refused this client's certificate (none, not issued by a CA it trusts, or not for client authentication); {Innermost(e).Message}"),
            HttpRequestException or IOException when _response is null && _channel.IsCleartextTcp
                => new Status(StatusCode.Unavailable, $"{_channel.Target} closed the connection before answering {_method.FullName} in cleartext HTTP/2 " +
                    $"(if it serves TLS, connect with https:// and TLS credentials); {Innermost(e).Message}"),
            OperationCanceledException => new Status(StatusCode.Unavailable, $"cannot connect to {_channel.Target}: timed out after {_channel.Options.ConnectTimeout}"),
            _ => new Status(StatusCode.Unavailable, $"connection to {_channel.Target} failed during {_method.FullName}: {Innermost(e).Message}"),
        };
        return new RpcException(status, new Metadata(), e);
    }

    private static Exception ConnectFailure(Exception e)
    {
        for (var current = e; current is not null; current = current.InnerException)
        {
            if (current is UnixSocketConnectException unix)
            {
                return unix;
            }
        }
        return Innermost(e);
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner)
        {
            e = inner;
        }
        return e;
    }

    public void Dispose()
    {
        _callCts.Cancel();
        _requestStream?.Complete();
        // A streaming call's start is only awaited by a read; one nobody read ends here, its failure is the call's end.
        _sending?.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        _reader?.Complete();
        _response?.Dispose();
        _request?.Dispose();
        _callCts.Dispose();
        _deadlineCts?.Dispose();
    }
}

/// <summary>
/// A request body written message by message (HTTP/2 full duplex): HttpClient hands over the body stream when it
/// starts sending, and the request ends when <see cref="Complete"/> is called.
/// </summary>
internal sealed class StreamingContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _body = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The request body, once HttpClient has started sending it.</summary>
    public Task<Stream> Body => _body.Task;

    public void Complete() => _completed.TrySetResult();

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _body.TrySetResult(stream);
        await _completed.Task.WaitAsync(cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
