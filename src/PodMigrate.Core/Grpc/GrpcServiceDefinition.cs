using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// The methods one service serves, built by hand from <see cref="Method{TRequest,TResponse}"/>s
/// (the role of grpc-dotnet's generated BindService / ServerServiceDefinition).
/// </summary>
public sealed class GrpcServiceDefinition
{
    private readonly List<GrpcServerCallHandler> _handlers = [];

    public GrpcServiceDefinition(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ServiceName = serviceName;
    }

    public string ServiceName { get; }

    internal IReadOnlyList<GrpcServerCallHandler> Handlers => _handlers;

    public GrpcServiceDefinition AddUnary<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Add(method, MethodType.Unary, new GrpcServerCallHandler<TRequest, TResponse>(method, handler, null));
    }

    public GrpcServiceDefinition AddServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Add(method, MethodType.ServerStreaming, new GrpcServerCallHandler<TRequest, TResponse>(method, null, handler));
    }

    private GrpcServiceDefinition Add<TRequest, TResponse>(Method<TRequest, TResponse> method, MethodType expectedType, GrpcServerCallHandler handler)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(method);
        if (method.ServiceName != ServiceName)
        {
            throw new ArgumentException($"{method.FullName} does not belong to service {ServiceName}", nameof(method));
        }
        if (method.Type != expectedType)
        {
            throw new ArgumentException($"{method.FullName} is {method.Type}, not {expectedType}", nameof(method));
        }
        if (_handlers.Exists(h => h.MethodName == method.Name))
        {
            throw new ArgumentException($"{method.FullName} is already added", nameof(method));
        }
        _handlers.Add(handler);
        return this;
    }
}
