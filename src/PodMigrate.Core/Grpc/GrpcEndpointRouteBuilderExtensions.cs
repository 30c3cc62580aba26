using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace PodMigrate.Core.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted; a larger one ends the call with ResourceExhausted.</summary>
    public int MaxReceiveMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// Turns an exception a handler threw into a status (the edge where typed errors become gRPC codes);
    /// null = not mine (the exception becomes Unknown, its message not leaked).
    /// </summary>
    public Func<Exception, Status?>? ExceptionMapper { get; init; }
}

public static class GrpcEndpointRouteBuilderExtensions
{
    /// <summary>Maps every method of <paramref name="service"/> as POST /Service/Method on Kestrel (HTTP/2).</summary>
    public static IEndpointConventionBuilder MapGrpcService(this IEndpointRouteBuilder endpoints, GrpcServiceDefinition service, GrpcServerOptions? options = null)
        => throw new NotImplementedException();
}
