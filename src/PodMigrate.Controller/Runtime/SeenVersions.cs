using System.Collections.Concurrent;
using k8s.Models;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// Why a reconciler may trust its informer's cache. Reconcilers read the object they reconcile from the cache instead of
/// GETting it each time; the one way that copy can mislead is being older than what this controller itself just wrote
/// (our write's watch event not yet delivered when the next reconcile starts — a requeue timer, a pod change). For a
/// migration that would repeat a phase with side effects (a checkpoint freezes the workload), so the versions this
/// controller has read or written of each object are remembered, and a cached copy is used only when it is that version
/// (or nothing is remembered); otherwise the reconciler reads the server. Once the cache shows the version, it is
/// forgotten. (The other choice, informers that keep keys only and a GET every reconcile, would hold no cache to trust
/// and pay a round trip per reconcile; handlers need the objects anyway, for old/new and for deletes found by a re-list.)
/// </summary>
internal sealed class SeenVersions
{
    private readonly ConcurrentDictionary<ObjectKey, string> _latest = new();

    /// <summary>True when <paramref name="cachedVersion"/> is no older than what this controller last saw of <paramref name="key"/>.</summary>
    public bool IsCurrent(ObjectKey key, string? cachedVersion)
    {
        if (!_latest.TryGetValue(key, out var latest))
        {
            return true;
        }
        if (latest != cachedVersion)
        {
            return false;
        }
        _latest.TryRemove(KeyValuePair.Create(key, latest));
        return true;
    }

    public void Saw(ObjectKey key, string? resourceVersion)
    {
        if (!string.IsNullOrEmpty(resourceVersion))
        {
            _latest[key] = resourceVersion;
        }
    }

    public void Forget(ObjectKey key) => _latest.TryRemove(key, out _);

    /// <summary>The API as the reconciler uses it, noting the version of every object of <paramref name="kind"/> it reads or writes.</summary>
    public IKubernetesApi Track<TKind>(IKubernetesApi api, ResourceKind<TKind> kind)
        where TKind : class, IMetadata<V1ObjectMeta>
        => new TrackingApi<TKind>(api, kind, this);

    private sealed class TrackingApi<TKind>(IKubernetesApi inner, ResourceKind<TKind> tracked, SeenVersions seen) : IKubernetesApi
        where TKind : class, IMetadata<V1ObjectMeta>
    {
        public k8s.IKubernetes Kubernetes => inner.Kubernetes;

        public async Task<T> GetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
            where T : class
            => Note(kind, await inner.GetAsync(kind, ns, name, cancellationToken));

        public Task<KubeList<T>> ListAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
            where T : class
            => inner.ListAsync(kind, ns, options, cancellationToken);

        public async Task<T> CreateAsync<T>(ResourceKind<T> kind, string? ns, T value, CancellationToken cancellationToken)
            where T : class
            => Note(kind, await inner.CreateAsync(kind, ns, value, cancellationToken));

        public Task BindAsync(string ns, string podName, string nodeName, CancellationToken cancellationToken)
            => inner.BindAsync(ns, podName, nodeName, cancellationToken);

        public async Task<T> ReplaceAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
            where T : class
            => Note(kind, await inner.ReplaceAsync(kind, ns, name, value, cancellationToken));

        public async Task<T> ReplaceStatusAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
            where T : class
            => Note(kind, await inner.ReplaceStatusAsync(kind, ns, name, value, cancellationToken));

        public async Task<T> PatchAsync<T>(ResourceKind<T> kind, string? ns, string name, PatchType type, string patch, bool status, CancellationToken cancellationToken)
            where T : class
            => Note(kind, await inner.PatchAsync(kind, ns, name, type, patch, status, cancellationToken));

        public async Task<T?> DeleteAsync<T>(ResourceKind<T> kind, string? ns, string name, DeleteOptions? options, CancellationToken cancellationToken)
            where T : class
        {
            var held = await inner.DeleteAsync(kind, ns, name, options, cancellationToken);
            return held is null ? held : Note(kind, held);
        }

        public IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
            where T : class
            => inner.WatchAsync(kind, ns, options, cancellationToken);

        private T Note<T>(ResourceKind<T> kind, T value)
            where T : class
        {
            if (ReferenceEquals(kind, tracked) && value is TKind obj)
            {
                var metadata = obj.Metadata;
                seen.Saw(ObjectKey.Of(metadata), metadata.ResourceVersion);
            }
            return value;
        }
    }
}
