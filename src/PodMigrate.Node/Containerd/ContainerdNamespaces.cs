using Api = Containerd.Services.Namespaces.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>Namespaces (the namespace header of the connection is irrelevant to these calls).</summary>
public sealed class ContainerdNamespaces(ContainerdConnection connection)
{
    private readonly Api.Namespaces.NamespacesClient _namespaces = new(connection.Invoker);

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _namespaces.ListAsync(new Api.ListNamespacesRequest(), o), new ContainerdCall("listing namespaces"), cancellationToken);
        return [.. response.Namespaces.Select(n => n.Name)];
    }

    /// <summary>Deletes an empty namespace (FailedPrecondition while it still holds containers, images, ...).</summary>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _namespaces.DeleteAsync(new Api.DeleteNamespaceRequest { Name = name }, o), new ContainerdCall($"deleting namespace {name}"), cancellationToken);
}
