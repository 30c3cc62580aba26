using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Services;

/// <summary>
/// The server edge, once for every service: a <see cref="PodMigrateException"/> becomes the status of its kind
/// (<see cref="ErrorMapping.ToStatus"/>) with its message and details; anything else is left to grpc-dotnet, which
/// answers Unknown without the exception's text.
/// </summary>
internal sealed partial class ErrorStatusInterceptor(ILogger<ErrorStatusInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (PodMigrateException e)
        {
            throw ToRpcException(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (PodMigrateException e)
        {
            throw ToRpcException(e, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (PodMigrateException e)
        {
            throw ToRpcException(e, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (PodMigrateException e)
        {
            throw ToRpcException(e, context);
        }
    }

    private RpcException ToRpcException(PodMigrateException e, ServerCallContext context)
    {
        var status = ErrorMapping.ToStatus(e);
        LogMapped(logger, context.Method, status.StatusCode, e);
        return new RpcException(status, e.Message);
    }

    [LoggerMessage(1400, LogLevel.Information, "{Method} failed with {StatusCode}")]
    private static partial void LogMapped(ILogger logger, string method, StatusCode statusCode, Exception exception);
}
