using System.Net.Sockets;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// The server side of one call on Kestrel: the request's metadata and deadline, the response frames, and the status
/// at the end (in trailers, or as a trailers-only response when no message was written).
/// </summary>
internal sealed class HttpServerCallContext : ServerCallContext, IDisposable
{
    private readonly HttpContext _http;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private bool _messageWritten;

    public HttpServerCallContext(HttpContext http, string method, TimeProvider timeProvider)
    {
        _http = http;
        Method = method;
        RequestHeaders = ReadRequestMetadata(http.Request.Headers);
        Deadline = DateTime.MaxValue;
        if (GrpcTimeout.TryParse(http.Request.Headers[GrpcProtocol.TimeoutHeader], out var timeout))
        {
            var now = timeProvider.GetUtcNow().UtcDateTime;
            Deadline = timeout < DateTime.MaxValue - now ? now + timeout : DateTime.MaxValue;
            // Beyond what a timer can hold (~49 days) the deadline is only reported, not timed.
            if (timeout < TimeSpan.FromDays(49))
            {
                _deadlineCts = new CancellationTokenSource(timeout, timeProvider);
            }
        }
        _callCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _deadlineCts?.Token ?? default);
    }

    public override string Method { get; }

    public override string Peer => _http.Connection.RemoteIpAddress switch
    {
        null => "unix:",
        { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"ipv6:[{ip}]:{_http.Connection.RemotePort}",
        var ip => $"ipv4:{ip}:{_http.Connection.RemotePort}",
    };

    public override Metadata RequestHeaders { get; }

    public override DateTime Deadline { get; }

    public override CancellationToken CancellationToken => _callCts.Token;

    public override Metadata ResponseTrailers { get; } = new();

    public bool DeadlineFired => _deadlineCts?.IsCancellationRequested == true;

    public bool ClientGone => _http.RequestAborted.IsCancellationRequested;

    /// <summary>The one request message; the client must then end its stream.</summary>
    public async Task<T> ReadRequestAsync<T>(MessageParser<T> parser, int maxMessageSize)
        where T : IMessage<T>
    {
        var reader = _http.Request.BodyReader;
        var request = await GrpcFraming.ReadMessageAsync(reader, parser, maxMessageSize, CancellationToken);
        if (request is null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "the request has no message"));
        }
        if (await GrpcFraming.ReadMessageAsync(reader, parser, maxMessageSize, CancellationToken) is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"{Method} takes one request message, the client sent more"));
        }
        return request;
    }

    /// <summary>Writes one response frame; <paramref name="flush"/> sends it now (streaming) instead of with the end of the call (unary).</summary>
    public async Task WriteMessageAsync(IMessage message, bool flush, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        CancellationToken.ThrowIfCancellationRequested();
        cancellationToken.ThrowIfCancellationRequested();
        if (!_messageWritten)
        {
            _http.Response.StatusCode = StatusCodes.Status200OK;
            _http.Response.ContentType = GrpcProtocol.ContentType;
            _messageWritten = true;
        }
        GrpcFraming.WriteMessage(_http.Response.BodyWriter, message);
        if (flush)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(CancellationToken, cancellationToken);
            var result = await _http.Response.BodyWriter.FlushAsync(linked.Token);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(linked.Token);
            }
        }
    }

    /// <summary>Ends the call with <paramref name="status"/>: in trailers after messages, else trailers-only (status in the headers, no body).</summary>
    public void Complete(Status status)
    {
        var response = _http.Response;
        if (!_messageWritten)
        {
            WriteTrailersOnly(response, status, ResponseTrailers);
            return;
        }
        response.AppendTrailer(GrpcProtocol.StatusHeader, ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (status.Detail.Length > 0)
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(status.Detail));
        }
        foreach (var (key, value) in ResponseTrailers)
        {
            response.AppendTrailer(key, value);
        }
    }

    public static void WriteTrailersOnly(HttpResponse response, Status status, Metadata? trailers = null, int httpStatus = StatusCodes.Status200OK)
    {
        response.StatusCode = httpStatus;
        response.ContentType = GrpcProtocol.ContentType;
        response.Headers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status.Detail.Length > 0)
        {
            response.Headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
        }
        foreach (var (key, value) in trailers ?? [])
        {
            response.Headers.Append(key, value);
        }
    }

    private static Metadata ReadRequestMetadata(IHeaderDictionary headers)
    {
        var metadata = new Metadata();
        foreach (var (name, values) in headers)
        {
            if (GrpcProtocol.IsReservedHeader(name))
            {
                continue;
            }
            foreach (var value in values)
            {
                if (value is not null)
                {
                    metadata.Add(name, value);
                }
            }
        }
        return metadata;
    }

    public void Dispose()
    {
        _callCts.Dispose();
        _deadlineCts?.Dispose();
    }

    /// <summary>The handler's view of the response stream: each message is flushed as it is written.</summary>
    internal sealed class StreamWriter<T>(HttpServerCallContext call) : IServerStreamWriter<T>
        where T : IMessage
    {
        public Task WriteAsync(T message, CancellationToken cancellationToken = default)
            => call.WriteMessageAsync(message, flush: true, cancellationToken);
    }
}
