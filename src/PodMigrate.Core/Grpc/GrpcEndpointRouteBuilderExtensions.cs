using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
    /// <remarks>
    /// An unknown method of the service ends with Unimplemented; an unknown service gets HTTP 404, which a gRPC client
    /// reads as Unimplemented too. The returned builder covers all of the service's endpoints.
    /// </remarks>
    public static IEndpointConventionBuilder MapGrpcService(this IEndpointRouteBuilder endpoints, GrpcServiceDefinition service, GrpcServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(service);
        options ??= new GrpcServerOptions();
        var group = endpoints.MapGroup("/" + service.ServiceName);
        foreach (var handler in service.Handlers)
        {
            group.MapPost("/" + handler.MethodName, http => handler.HandleCallAsync(http, options))
                .WithDisplayName("gRPC " + handler.FullName);
        }
        group.MapPost("/{method}", http => GrpcServerCallHandler.UnimplementedAsync(http, service.ServiceName))
            .WithDisplayName($"gRPC /{service.ServiceName}/ (unknown method)");
        return group;
    }
}
