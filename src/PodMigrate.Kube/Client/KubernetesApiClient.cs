using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using k8s;
using k8s.Autorest;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>
/// <see cref="IKubernetesApi"/> over the official KubernetesClient: its configuration and authentication (kubeconfig with
/// exec and auth-provider plugins, in-cluster with the service-account token re-read as it rotates), its transport, its
/// custom-object API (which serves the core group too) and its watch. What stays ours is the typed kind descriptor
/// (<see cref="ResourceKind{T}"/>), so a kind's model is read with its own JSON contract, and the mapping of failures to
/// <see cref="PodMigrateException"/> kinds, done in one place (<see cref="KubeApiErrors.Translate"/>).
/// <see cref="Kubernetes"/> is the package's client for its typed calls on the package's models (the controller's leases
/// and events), run through <see cref="KubeApiErrors.CallAsync"/>.
/// </summary>
public sealed class KubernetesApiClient : IKubernetesApi, IDisposable
{
    private readonly KubernetesClientConfiguration _config;
    private readonly k8s.Kubernetes _kubernetes;

    /// <param name="handlers">The package's HTTP pipeline additions, outermost first (tests put a hand on the wire here).</param>
    public KubernetesApiClient(KubernetesClientConfiguration config, params DelegatingHandler[] handlers)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _kubernetes = new k8s.Kubernetes(config, handlers);
    }

    public IKubernetes Kubernetes => _kubernetes;

    /// <summary>The context's namespace (kubeconfig) or the pod's own (service account); "default" when neither says.</summary>
    public string DefaultNamespace => string.IsNullOrEmpty(_config.Namespace) ? "default" : _config.Namespace;

    public Uri Server => new(_config.Host);

    public Task<T> GetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var objects = Kubernetes.CustomObjects;
        return CallAsync(kind.TypeInfo, $"get {kind} {Describe(ns, name)}", token => kind.Namespaced
            ? objects.GetNamespacedCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, Required(ns), kind.Plural, name, cancellationToken: token)
            : objects.GetClusterCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, kind.Plural, name, cancellationToken: token), cancellationToken);
    }

    public Task<KubeList<T>> ListAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        return CallAsync(kind.ListTypeInfo, $"list {kind} in {ns ?? "all namespaces"}", token => List(kind, ns, options, token), cancellationToken);
    }

    public Task<T> CreateAsync<T>(ResourceKind<T> kind, string? ns, T value, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = JsonSerializer.SerializeToElement(value, kind.TypeInfo);
        var objects = Kubernetes.CustomObjects;
        ns ??= kind.Namespaced ? DefaultNamespace : null;
        return CallAsync(kind.TypeInfo, $"create {kind} in {ns}", token => kind.Namespaced
            ? objects.CreateNamespacedCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, ns, kind.Plural, cancellationToken: token)
            : objects.CreateClusterCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, kind.Plural, cancellationToken: token), cancellationToken);
    }

    public async Task BindAsync(string ns, string podName, string nodeName, CancellationToken cancellationToken)
    {
        var binding = new V1Binding
        {
            Metadata = new V1ObjectMeta { Name = podName, NamespaceProperty = ns },
            Target = new V1ObjectReference { ApiVersion = "v1", Kind = "Node", Name = nodeName },
        };
        var doing = $"bind pod {ns}/{podName} to node {nodeName}";
        try
        {
            using var response = await Kubernetes.CoreV1.CreateNamespacedPodBindingWithHttpMessagesAsync(binding, podName, ns, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (KubeApiErrors.Translate(e, doing, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    public Task<T> ReplaceAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = JsonSerializer.SerializeToElement(value, kind.TypeInfo);
        var objects = Kubernetes.CustomObjects;
        return CallAsync(kind.TypeInfo, $"replace {kind} {Describe(ns, name)}", token => kind.Namespaced
            ? objects.ReplaceNamespacedCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, Required(ns), kind.Plural, name, cancellationToken: token)
            : objects.ReplaceClusterCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, kind.Plural, name, cancellationToken: token), cancellationToken);
    }

    public Task<T> ReplaceStatusAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = JsonSerializer.SerializeToElement(value, kind.TypeInfo);
        var objects = Kubernetes.CustomObjects;
        return CallAsync(kind.TypeInfo, $"replace status of {kind} {Describe(ns, name)}", token => kind.Namespaced
            ? objects.ReplaceNamespacedCustomObjectStatusWithHttpMessagesAsync(body, kind.Group, kind.Version, Required(ns), kind.Plural, name, cancellationToken: token)
            : objects.ReplaceClusterCustomObjectStatusWithHttpMessagesAsync(body, kind.Group, kind.Version, kind.Plural, name, cancellationToken: token), cancellationToken);
    }

    public Task<T> PatchAsync<T>(ResourceKind<T> kind, string? ns, string name, PatchType type, string patch, bool status, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(patch);
        var body = new V1Patch(patch, type switch
        {
            PatchType.MergePatch => V1Patch.PatchType.MergePatch,
            PatchType.StrategicMergePatch => V1Patch.PatchType.StrategicMergePatch,
            PatchType.JsonPatch => V1Patch.PatchType.JsonPatch,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        });
        var objects = Kubernetes.CustomObjects;
        return CallAsync(kind.TypeInfo, $"patch {(status ? "status of " : "")}{kind} {Describe(ns, name)}", token => (kind.Namespaced, status) switch
        {
            (true, false) => objects.PatchNamespacedCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, Required(ns), kind.Plural, name, cancellationToken: token),
            (true, true) => objects.PatchNamespacedCustomObjectStatusWithHttpMessagesAsync(body, kind.Group, kind.Version, Required(ns), kind.Plural, name, cancellationToken: token),
            (false, false) => objects.PatchClusterCustomObjectWithHttpMessagesAsync(body, kind.Group, kind.Version, kind.Plural, name, cancellationToken: token),
            (false, true) => objects.PatchClusterCustomObjectStatusWithHttpMessagesAsync(body, kind.Group, kind.Version, kind.Plural, name, cancellationToken: token),
        }, cancellationToken);
    }

    public async Task<T?> DeleteAsync<T>(ResourceKind<T> kind, string? ns, string name, DeleteOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = options is null ? null : new V1DeleteOptions
        {
            GracePeriodSeconds = options.GracePeriodSeconds,
            PropagationPolicy = options.PropagationPolicy,
            Preconditions = options.Preconditions is { } p ? new V1Preconditions { Uid = p.Uid, ResourceVersion = p.ResourceVersion } : null,
        };
        var objects = Kubernetes.CustomObjects;
        var element = await CallAsync(JsonContext.JsonElement, $"delete {kind} {Describe(ns, name)}", token => kind.Namespaced
            ? objects.DeleteNamespacedCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, Required(ns), kind.Plural, name, body, cancellationToken: token)
            : objects.DeleteClusterCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, kind.Plural, name, body, cancellationToken: token), cancellationToken);
        // The server answers with the object (still there while finalizers or a grace period remain) or a Status when it is gone.
        if (element.ValueKind != JsonValueKind.Object || (element.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String && k.GetString() == "Status"))
        {
            return null;
        }
        return Read(element, kind.TypeInfo, $"delete {kind} {Describe(ns, name)}");
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var doing = $"watch {kind} in {ns ?? "all namespaces"}";
        // The package reports an ERROR event (a Status: 410 Expired…) to onError and reads on; the server ends the stream after it.
        Exception? failed = null;
        var events = Watch(kind, ns, options, e => failed ??= e, cancellationToken);
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            (k8s.WatchEventType Type, object Object) current;
            try
            {
                if (failed is not null || !await enumerator.MoveNextAsync())
                {
                    break;
                }
                current = enumerator.Current;
            }
            catch (Exception e) when (KubeApiErrors.Translate(e, doing, cancellationToken) is { } translated)
            {
                throw translated;
            }
            if (failed is not null)
            {
                break;
            }
            yield return current.Type switch
            {
                k8s.WatchEventType.Added => new WatchEvent<T>(WatchEventType.Added, Read(AsElement(current.Object, doing), kind.TypeInfo, doing)),
                k8s.WatchEventType.Modified => new WatchEvent<T>(WatchEventType.Modified, Read(AsElement(current.Object, doing), kind.TypeInfo, doing)),
                k8s.WatchEventType.Deleted => new WatchEvent<T>(WatchEventType.Deleted, Read(AsElement(current.Object, doing), kind.TypeInfo, doing)),
                k8s.WatchEventType.Bookmark => new WatchEvent<T>(WatchEventType.Bookmark, Read(AsElement(current.Object, doing), kind.TypeInfo, doing)),
                _ => throw new PodMigrateException(ErrorKind.Internal, $"{doing}: unexpected watch event type {current.Type}"),
            };
        }
        if (failed is not null)
        {
            throw KubeApiErrors.Translate(failed, doing, cancellationToken) ?? new PodMigrateException(ErrorKind.Internal, $"{doing}: {failed.Message}", failed);
        }
    }

    public void Dispose() => _kubernetes.Dispose();

    private Task<HttpOperationResponse<object>> List<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        var objects = Kubernetes.CustomObjects;
        var labels = NullIfEmpty(options?.LabelSelector);
        var fields = NullIfEmpty(options?.FieldSelector);
        var version = NullIfEmpty(options?.ResourceVersion);
        if (kind.Namespaced && ns is not null)
        {
            return objects.ListNamespacedCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, ns, kind.Plural,
                fieldSelector: fields, labelSelector: labels, resourceVersion: version, cancellationToken: cancellationToken);
        }
        if (kind.Namespaced)
        {
            return objects.ListCustomObjectForAllNamespacesWithHttpMessagesAsync(kind.Group, kind.Version, kind.Plural,
                fieldSelector: fields, labelSelector: labels, resourceVersion: version, cancellationToken: cancellationToken);
        }
        return objects.ListClusterCustomObjectWithHttpMessagesAsync(kind.Group, kind.Version, kind.Plural,
            fieldSelector: fields, labelSelector: labels, resourceVersion: version, cancellationToken: cancellationToken);
    }

    private IAsyncEnumerable<(k8s.WatchEventType, object)> Watch<T>(ResourceKind<T> kind, string? ns, ListOptions? options, Action<Exception> onError,
        CancellationToken cancellationToken)
        where T : class
    {
        var objects = Kubernetes.CustomObjects;
        var labels = NullIfEmpty(options?.LabelSelector);
        var fields = NullIfEmpty(options?.FieldSelector);
        var version = NullIfEmpty(options?.ResourceVersion);
        var timeout = options?.TimeoutSeconds;
        bool? bookmarks = options?.AllowWatchBookmarks == true ? true : null;
        if (kind.Namespaced && ns is not null)
        {
            return objects.WatchListNamespacedCustomObjectAsync(kind.Group, kind.Version, ns, kind.Plural, allowWatchBookmarks: bookmarks,
                fieldSelector: fields, labelSelector: labels, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: cancellationToken);
        }
        if (kind.Namespaced)
        {
            return objects.WatchListCustomObjectForAllNamespacesAsync(kind.Group, kind.Version, kind.Plural, allowWatchBookmarks: bookmarks,
                fieldSelector: fields, labelSelector: labels, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: cancellationToken);
        }
        return objects.WatchListClusterCustomObjectAsync(kind.Group, kind.Version, kind.Plural, allowWatchBookmarks: bookmarks,
            fieldSelector: fields, labelSelector: labels, resourceVersion: version, timeoutSeconds: timeout, onError: onError, cancellationToken: cancellationToken);
    }

    private static JsonElement AsElement(object value, string doing) => value is JsonElement element
        ? element
        : throw new PodMigrateException(ErrorKind.Internal, $"{doing}: the server's answer is not a JSON document");

    /// <summary>Runs one call of the package and reads its answer (a JsonElement: the custom-object API is untyped) as <typeparamref name="TResult"/>.</summary>
    private static async Task<TResult> CallAsync<TResult>(JsonTypeInfo<TResult> typeInfo, string doing,
        Func<CancellationToken, Task<HttpOperationResponse<object>>> call, CancellationToken cancellationToken)
    {
        HttpOperationResponse<object> response;
        try
        {
            response = await call(cancellationToken);
        }
        catch (Exception e) when (KubeApiErrors.Translate(e, doing, cancellationToken) is { } translated)
        {
            throw translated;
        }
        using (response)
        {
            return response.Body is JsonElement element
                ? Read(element, typeInfo, doing)
                : throw new PodMigrateException(ErrorKind.Internal, $"{doing}: the server's answer is not a JSON document");
        }
    }

    private static T Read<T>(JsonElement element, JsonTypeInfo<T> typeInfo, string doing)
    {
        try
        {
            return element.Deserialize(typeInfo) ?? throw new JsonException("null document");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.Internal, $"{doing}: the server's answer is not a {typeof(T).Name}: {e.Message}", e);
        }
    }

    private static string Required(string? ns)
    {
        ArgumentException.ThrowIfNullOrEmpty(ns);
        return ns;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static string Describe(string? ns, string name) => ns is null ? name : $"{ns}/{name}";

    private static KubeClientJsonContext JsonContext => KubeClientJsonContext.Default;
}
