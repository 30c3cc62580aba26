using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace PodMigrate.Core.Grpc;

public enum MethodType
{
    Unary,
    ServerStreaming,

    /// <summary>Streams both ways (client side only: e.g. containerd's Content.Write).</summary>
    DuplexStreaming,
}

/// <summary>
/// One RPC of a service: its path and how to (de)serialize its messages (the role of Grpc.Core.Method).
/// Made from the descriptors protoc emits even with GrpcServices="None".
/// </summary>
public sealed class Method<TRequest, TResponse>
    where TRequest : IMessage<TRequest>, new()
    where TResponse : IMessage<TResponse>, new()
{
    public Method(MethodType type, string serviceName, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        Type = type;
        ServiceName = serviceName;
        Name = name;
        FullName = $"/{serviceName}/{name}";
    }

    public MethodType Type { get; }

    public string ServiceName { get; }

    public string Name { get; }

    /// <summary>The HTTP/2 path: "/package.Service/Method".</summary>
    public string FullName { get; }

    public MessageParser<TRequest> RequestParser { get; } = new(() => new TRequest());

    public MessageParser<TResponse> ResponseParser { get; } = new(() => new TResponse());
}

public static class Method
{
    /// <summary>
    /// Builds the method <paramref name="name"/> of <paramref name="service"/>, checking that its request and
    /// response types and its streaming shape match the type arguments (a mismatch is a programming error).
    /// </summary>
    public static Method<TRequest, TResponse> FromDescriptor<TRequest, TResponse>(ServiceDescriptor service, string name)
        where TRequest : IMessage<TRequest>, new()
        where TResponse : IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(service);
        var method = service.FindMethodByName(name)
            ?? throw new ArgumentException($"service {service.FullName} has no method {name}", nameof(name));
        if (method.IsClientStreaming && !method.IsServerStreaming)
        {
            throw new NotSupportedException($"{service.FullName}/{name} is client-streaming only; this gRPC layer supports unary, server-streaming and duplex calls");
        }
        if (method.InputType.ClrType != typeof(TRequest) || method.OutputType.ClrType != typeof(TResponse))
        {
            throw new ArgumentException(
                $"{service.FullName}/{name} takes {method.InputType.FullName} and returns {method.OutputType.FullName}, not {typeof(TRequest).Name} -> {typeof(TResponse).Name}");
        }
        var type = (method.IsClientStreaming, method.IsServerStreaming) switch
        {
            (true, true) => MethodType.DuplexStreaming,
            (false, true) => MethodType.ServerStreaming,
            _ => MethodType.Unary,
        };
        return new Method<TRequest, TResponse>(type, service.FullName, name);
    }
}
