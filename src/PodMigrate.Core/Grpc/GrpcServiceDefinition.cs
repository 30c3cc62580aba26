using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// The methods one service serves, built by hand from <see cref="Method{TRequest,TResponse}"/>s
/// (the role of grpc-dotnet's generated BindService / ServerServiceDefinition).
/// </summary>
public sealed class GrpcServiceDefinition
{
    public GrpcServiceDefinition(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ServiceName = serviceName;
    }

    public string ServiceName { get; }

    public GrpcServiceDefinition AddUnary<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
        => throw new NotImplementedException();

    public GrpcServiceDefinition AddServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
        => throw new NotImplementedException();
}
