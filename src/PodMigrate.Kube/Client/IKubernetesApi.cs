using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>
/// The seam between PodMigrate and the Kubernetes API: <see cref="KubernetesApiClient"/> is the implementation, over the
/// official KubernetesClient (its configuration, authentication, transport and watch). Failures are
/// <see cref="Core.Errors.PodMigrateException"/>s whose kind follows the API's Status (see <see cref="KubeApiErrors"/>).
/// For cluster-scoped kinds <c>ns</c> (namespace) is ignored; for namespaced kinds a null namespace lists across all.
/// </summary>
public interface IKubernetesApi
{
    /// <summary>
    /// The package's client, for its typed calls on the package's models (<c>CoordinationV1</c> leases, <c>CoreV1</c> events):
    /// run each through <see cref="KubeApiErrors.CallAsync"/> so that its failures get the same kinds as the calls below.
    /// </summary>
    k8s.IKubernetes Kubernetes { get; }

    Task<T> GetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
        where T : class;

    Task<KubeList<T>> ListAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class;

    Task<T> CreateAsync<T>(ResourceKind<T> kind, string? ns, T value, CancellationToken cancellationToken)
        where T : class;

    /// <summary>POST pods/{name}/binding: assigns a pod to a node, as a scheduler does (Aborted/409 when it is already bound).</summary>
    Task BindAsync(string ns, string podName, string nodeName, CancellationToken cancellationToken);

    /// <summary>PUT: fails with Aborted (409 Conflict) when the object's resourceVersion is stale.</summary>
    Task<T> ReplaceAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class;

    /// <summary>PUT on the status subresource: only the status of <paramref name="value"/> is applied.</summary>
    Task<T> ReplaceStatusAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class;

    /// <summary>PATCH with a raw JSON body in the given format, on the object or (with <paramref name="status"/>) its status subresource.</summary>
    Task<T> PatchAsync<T>(ResourceKind<T> kind, string? ns, string name, PatchType type, string patch, bool status, CancellationToken cancellationToken)
        where T : class;

    /// <summary>
    /// DELETE. Returns the object when the server still holds it (deletionTimestamp set while finalizers or a grace period
    /// remain), null when it is gone.
    /// </summary>
    Task<T?> DeleteAsync<T>(ResourceKind<T> kind, string? ns, string name, DeleteOptions? options, CancellationToken cancellationToken)
        where T : class;

    /// <summary>
    /// A watch stream, typed. Ends when the server closes it (timeoutSeconds). An expired resourceVersion (410 Gone, as
    /// an HTTP status or an ERROR event) throws a PodMigrateException for which <see cref="KubeApiErrors.IsGone"/> holds: re-list.
    /// </summary>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class;
}
