using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// How a reconciler reads objects it does not reconcile itself (a migration's source and clone pods): from the
/// informer's cache, as controller-runtime's client does, so that a reconcile of an unchanged world asks the API server
/// nothing. Writes still go to the server guarded by the version read (a stale copy makes a 409, and the key is retried).
/// An object missing from the cache is asked of the server: the cache may not have delivered an object just created (a
/// clone this controller made a moment ago), so only the server's NotFound means gone. Without an informer (a
/// reconciler driven by hand) every read is a GET.
/// </summary>
internal sealed class CacheFirstReader<T>(IKubernetesApi api, ResourceKind<T> kind, Informer<T>? cache)
    where T : class, IMetadata<V1ObjectMeta>
{
    /// <summary>The object (a copy the caller may change), or null when the server says NotFound.</summary>
    public async Task<T?> GetAsync(string ns, string name, CancellationToken cancellationToken)
        => cache?.GetCopy(new ObjectKey(ns, name)) ?? await GetFreshAsync(ns, name, cancellationToken);

    /// <summary>
    /// The object as the server has it now, or null when NotFound: for decisions that must not rest on a copy that may
    /// lag (that a pod is gone before the source it replaces is resumed).
    /// </summary>
    public async Task<T?> GetFreshAsync(string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await api.GetAsync(kind, ns, name, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }
}
