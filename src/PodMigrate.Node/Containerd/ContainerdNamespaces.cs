using PodMigrate.Core.Grpc;
using Api = Containerd.Services.Namespaces.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>Namespaces (the namespace header of the connection is irrelevant to these calls).</summary>
public sealed class ContainerdNamespaces(ContainerdConnection connection)
{
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor Service = Api.NamespaceReflection.Descriptor.Services[0];
    private static readonly Method<Api.ListNamespacesRequest, Api.ListNamespacesResponse> ListMethod = Method.FromDescriptor<Api.ListNamespacesRequest, Api.ListNamespacesResponse>(Service, "List");
    private static readonly Method<Api.DeleteNamespaceRequest, Empty> DeleteMethod = Method.FromDescriptor<Api.DeleteNamespaceRequest, Empty>(Service, "Delete");

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(ListMethod, new Api.ListNamespacesRequest(), new ContainerdCall("listing namespaces"), cancellationToken);
        return [.. response.Namespaces.Select(n => n.Name)];
    }

    /// <summary>Deletes an empty namespace (FailedPrecondition while it still holds containers, images, ...).</summary>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
        => await connection.UnaryAsync(DeleteMethod, new Api.DeleteNamespaceRequest { Name = name }, new ContainerdCall($"deleting namespace {name}"), cancellationToken);
}
