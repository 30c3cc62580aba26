using System.Globalization;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// Serves one method on Kestrel: checks the request is gRPC, reads the request message, runs the handler under the
/// call's deadline, and ends the call with the status the outcome maps to.
/// </summary>
internal abstract partial class GrpcServerCallHandler
{
    private const string LoggerCategory = "PodMigrate.Core.Grpc.Server";

    protected GrpcServerCallHandler(string methodName, string fullName)
    {
        MethodName = methodName;
        FullName = fullName;
    }

    public string MethodName { get; }

    public string FullName { get; }

    public async Task HandleCallAsync(HttpContext http, GrpcServerOptions options)
    {
        var logger = CreateLogger(http);
        if (!HttpProtocol.IsHttp2(http.Request.Protocol))
        {
            LogNotHttp2(logger, FullName, http.Request.Protocol);
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            http.Response.Headers.Upgrade = "h2c";
            return;
        }
        if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
        {
            LogUnsupportedContentType(logger, FullName, http.Request.ContentType);
            HttpServerCallContext.WriteTrailersOnly(http.Response,
                new Status(StatusCode.Internal, $"content-type \"{http.Request.ContentType}\" is not supported"),
                httpStatus: StatusCodes.Status415UnsupportedMediaType);
            return;
        }
        // The message size limit replaces Kestrel's request body limit; a streaming body is never held whole.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = null;
        }

        using var call = new HttpServerCallContext(http, FullName, http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System);
        Status status;
        try
        {
            await InvokeAsync(call, options);
            status = Status.DefaultSuccess;
        }
        catch (Exception) when (call.ClientGone)
        {
            // The client reset the stream or the connection dropped: there is nobody to send a status to.
            LogClientCancelled(logger, FullName);
            return;
        }
        catch (RpcException e)
        {
            status = e.Status;
            foreach (var (key, value) in e.Trailers)
            {
                call.ResponseTrailers.Add(key, value);
            }
        }
        catch (OperationCanceledException) when (call.DeadlineFired)
        {
            status = new Status(StatusCode.DeadlineExceeded, "deadline exceeded");
        }
        catch (Exception e)
        {
            // The RPC boundary: a typed error becomes its status through the mapper, anything else is Unknown without its text.
            if (options.ExceptionMapper?.Invoke(e) is { } mapped)
            {
                LogMappedException(logger, FullName, mapped.StatusCode, e);
                status = mapped;
            }
            else
            {
                LogUnhandledException(logger, FullName, e);
                status = new Status(StatusCode.Unknown, "Exception was thrown by handler.");
            }
        }
        if (call.ClientGone)
        {
            LogClientCancelled(logger, FullName);
            return;
        }
        if (call.DeadlineFired && status.StatusCode != StatusCode.DeadlineExceeded)
        {
            status = new Status(StatusCode.DeadlineExceeded, "deadline exceeded");
        }
        if (status.StatusCode != StatusCode.OK)
        {
            LogCallFailed(logger, FullName, status.StatusCode, status.Detail);
        }
        call.Complete(status);
    }

    /// <summary>A POST to a known service with a method it does not have.</summary>
    public static Task UnimplementedAsync(HttpContext http, string serviceName)
    {
        var method = http.Request.RouteValues["method"] as string;
        var logger = CreateLogger(http);
        LogUnknownMethod(logger, serviceName, method);
        HttpServerCallContext.WriteTrailersOnly(http.Response, new Status(StatusCode.Unimplemented, $"unknown method {method} for service {serviceName}"));
        return Task.CompletedTask;
    }

    protected abstract Task InvokeAsync(HttpServerCallContext call, GrpcServerOptions options);

    private static ILogger CreateLogger(HttpContext http)
        => http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger(LoggerCategory) ?? NullLogger.Instance;

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "gRPC call {Method} failed with an unhandled exception; the client gets Unknown")]
    private static partial void LogUnhandledException(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "gRPC call {Method} ended with {StatusCode} mapped from an exception")]
    private static partial void LogMappedException(ILogger logger, string method, StatusCode statusCode, Exception exception);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "gRPC call {Method} ended with {StatusCode}: {Detail}")]
    private static partial void LogCallFailed(ILogger logger, string method, StatusCode statusCode, string detail);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "gRPC call {Method} cancelled by the client")]
    private static partial void LogClientCancelled(ILogger logger, string method);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "gRPC call {Method} rejected: content-type {ContentType} is not application/grpc")]
    private static partial void LogUnsupportedContentType(ILogger logger, string method, string? contentType);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "gRPC call {Method} rejected: {Protocol} is not HTTP/2")]
    private static partial void LogNotHttp2(ILogger logger, string method, string protocol);

    [LoggerMessage(EventId = 106, Level = LogLevel.Debug, Message = "gRPC call to unknown method {Method} of service {Service}")]
    private static partial void LogUnknownMethod(ILogger logger, string service, string? method);
}

internal sealed class GrpcServerCallHandler<TRequest, TResponse> : GrpcServerCallHandler
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    private readonly Method<TRequest, TResponse> _method;
    private readonly UnaryServerMethod<TRequest, TResponse>? _unary;
    private readonly ServerStreamingServerMethod<TRequest, TResponse>? _serverStreaming;

    public GrpcServerCallHandler(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? unary, ServerStreamingServerMethod<TRequest, TResponse>? serverStreaming)
        : base(method.Name, method.FullName)
    {
        _method = method;
        _unary = unary;
        _serverStreaming = serverStreaming;
    }

    protected override async Task InvokeAsync(HttpServerCallContext call, GrpcServerOptions options)
    {
        var request = await call.ReadRequestAsync(_method.RequestParser, options.MaxReceiveMessageSize);
        if (_unary is not null)
        {
            var response = await _unary(request, call);
            await call.WriteMessageAsync(response, flush: false, CancellationToken.None);
        }
        else
        {
            await _serverStreaming!(request, new HttpServerCallContext.StreamWriter<TResponse>(call), call);
        }
    }
}
