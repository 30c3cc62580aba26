using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Policy;
using PodMigrate.Kube.ApiServer.Storage;
using PodMigrate.Kube.ApiServer.Strategies;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// The API server's registry, as kube-apiserver's generic registry store: the REST verbs over the
/// <see cref="VersionedStorage"/>, with the rules every kind shares (name or generateName, namespace, uid and timestamps,
/// resourceVersion preconditions, generation, finalizers and graceful deletion) and each kind's own from its
/// <see cref="IResourceStrategy"/>; the pods' binding and eviction subresources build on it (<see cref="Atomically"/>).
/// Beside the verbs, what a cluster's controllers would do at once: the served types follow the CustomResourceDefinitions (their objects go with them), a
/// deleted namespace terminates and then its content goes, and the disruption budgets' status follows their pods.
/// One lock guards it all, storage and watches included: correctness over throughput.
/// </summary>
internal sealed class ObjectStore : IDisposable
{
    private const string GenerateNameChars = "bcdfghjklmnpqrstvwxz2456789";

    private readonly Lock _gate = new();
    private readonly VersionedStorage _storage;
    private readonly List<ITimer> _cleanups = [];
    /// <summary>Per namespace, the disruption controller's next recheck of its budgets: when a disruptedPods record expires.</summary>
    private readonly Dictionary<string, (DateTimeOffset At, ITimer Timer)> _budgetRechecks = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Group, string Version, string Plural), ResourceType> _types = [];
    private readonly ApiServerOptions _options;

    public ObjectStore(ApiServerOptions options)
    {
        _options = options;
        _storage = new VersionedStorage(options.WatchHistory);
        foreach (var type in BuiltInTypes.All)
        {
            _types[(type.Group, type.Version, type.Plural)] = type;
        }
        foreach (var ns in options.InitialNamespaces)
        {
            Create(BuiltInTypes.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } });
        }
    }

    public string CurrentResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _storage.ResourceVersion;
            }
        }
    }

    public ResourceType? FindType(string group, string version, string plural)
    {
        lock (_gate)
        {
            return _types.GetValueOrDefault((group, version, plural));
        }
    }

    public IReadOnlyList<ResourceType> Types()
    {
        lock (_gate)
        {
            return [.. _types.Values];
        }
    }

    public JsonObject Get(ResourceType type, string? ns, string name)
    {
        lock (_gate)
        {
            return (JsonObject)_storage.Get(type, ns, name).DeepClone();
        }
    }

    public (List<JsonObject> Items, string ResourceVersion) List(ResourceType type, string? ns, Selector labels, Selector fields)
    {
        lock (_gate)
        {
            var items = _storage.Objects(type, ns)
                .Where(o => labels.Matches(o) && fields.Matches(o))
                .Select(o => (JsonObject)o.DeepClone())
                .ToList();
            return (items, _storage.ResourceVersion);
        }
    }

    public JsonObject Create(ResourceType type, string? ns, JsonObject body)
    {
        lock (_gate)
        {
            var obj = (JsonObject)body.DeepClone();
            obj["apiVersion"] ??= type.ApiVersion;
            obj["kind"] ??= type.Kind;
            if (obj["kind"]?.GetValue<string>() != type.Kind)
            {
                throw PodMigrateException.InvalidArgument($"the body is a {obj["kind"]}, not a {type.Kind}");
            }
            var metadata = Metadata(obj);
            if (type.Namespaced)
            {
                var bodyNamespace = metadata["namespace"]?.GetValue<string>();
                if (bodyNamespace is not null && bodyNamespace != ns)
                {
                    throw PodMigrateException.InvalidArgument("the namespace of the provided object does not match the namespace sent on the request");
                }
                metadata["namespace"] = ns;
                if (_storage.TryGet(BuiltInTypes.Namespaces, null, ns!) is not { } owner)
                {
                    throw PodMigrateException.NotFound($"namespaces \"{ns}\" not found");
                }
                if (owner["metadata"]?["deletionTimestamp"] is not null)
                {
                    // The real server answers 403 Forbidden; the reason and message are the same.
                    throw PodMigrateException.FailedPrecondition($"{type.QualifiedName} \"{metadata["name"] ?? metadata["generateName"]}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated");
                }
            }
            else
            {
                metadata.Remove("namespace");
            }
            var name = metadata["name"]?.GetValue<string>();
            if (string.IsNullOrEmpty(name))
            {
                var prefix = metadata["generateName"]?.GetValue<string>();
                if (string.IsNullOrEmpty(prefix))
                {
                    throw PodMigrateException.InvalidArgument($"{type.Kind} is invalid: metadata.name: Required value: name or generateName is required");
                }
                name = prefix + RandomNumberGenerator.GetString(GenerateNameChars, 5);
                metadata["name"] = name;
            }
            if (_storage.TryGet(type, ns, name) is not null)
            {
                throw new PodMigrateException(ErrorKind.AlreadyExists, $"{type.QualifiedName} \"{name}\" already exists");
            }
            var now = _options.TimeProvider.GetUtcNow();
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Timestamp(now);
            metadata["generation"] = 1;
            metadata.Remove("deletionTimestamp");
            metadata.Remove("deletionGracePeriodSeconds");
            ResourceStrategies.For(type).PrepareForCreate(obj, now);
            if (type == BuiltInTypes.CustomResourceDefinitions)
            {
                Serve(BuiltInTypes.FromCrd(obj));
            }
            Commit(type, ns, name, "ADDED", null, obj);
            return (JsonObject)obj.DeepClone();
        }
    }

    /// <summary>PUT: the whole object (or, with <paramref name="statusOnly"/>, only its status) replaces the stored one.</summary>
    public JsonObject Update(ResourceType type, string? ns, string name, JsonObject body, bool statusOnly)
    {
        lock (_gate)
        {
            var current = _storage.Get(type, ns, name);
            return Write(type, ns, name, current, body, statusOnly);
        }
    }

    /// <summary>Applies a patch; <paramref name="validate"/> sees the patched object before it is written and may refuse it by throwing.</summary>
    public JsonObject Patch(ResourceType type, string? ns, string name, string contentType, JsonNode? patch, bool statusOnly, Action<JsonObject>? validate = null)
    {
        lock (_gate)
        {
            var current = _storage.Get(type, ns, name);
            if (Patches.Apply(current, contentType, patch) is not JsonObject patched)
            {
                throw PodMigrateException.InvalidArgument("the patch does not produce an object");
            }
            validate?.Invoke(patched);
            // A resourceVersion in the patch is a precondition, like in a PUT; without one the patch applies to the latest.
            var patchedRv = patched["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (patchedRv == Meta(current, "resourceVersion"))
            {
                Metadata(patched).Remove("resourceVersion");
            }
            return Write(type, ns, name, current, patched, statusOnly);
        }
    }

    /// <summary>
    /// Runs a subresource's read-modify-write (pods/binding, pods/eviction: <see cref="Subresources"/>) under the
    /// registry's lock, so that it is as atomic as any write; <see cref="Stored"/>, <see cref="StoredObjects"/>,
    /// <see cref="Write"/> and <see cref="Commit"/> are for use inside it.
    /// </summary>
    public T Atomically<T>(Func<T> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        lock (_gate)
        {
            return body();
        }
    }

    /// <summary>The stored object itself (not a copy: change a clone), NotFound when absent. Inside <see cref="Atomically"/>.</summary>
    public JsonObject Stored(ResourceType type, string? ns, string name) => _storage.Get(type, ns, name);

    /// <summary>The stored objects of a type, all namespaces. Inside <see cref="Atomically"/>.</summary>
    public IEnumerable<JsonObject> StoredObjects(ResourceType type) => _storage.Objects(type);

    public DateTimeOffset Now => _options.TimeProvider.GetUtcNow();

    /// <summary>
    /// DELETE: gone at once, unless finalizers remain or the kind's strategy gives a grace period (a pod bound to a node):
    /// then deletionTimestamp is set and the object stays until the finalizers are removed or a delete with grace period 0
    /// (the kubelet's) comes. A namespace terminates instead (<see cref="TerminateNamespace"/>).
    /// Returns the object and whether it is gone.
    /// </summary>
    public (JsonObject Object, bool Gone) Delete(ResourceType type, string? ns, string name, JsonObject? options)
    {
        lock (_gate)
        {
            var current = _storage.Get(type, ns, name);
            var preconditions = options?["preconditions"] as JsonObject;
            if (preconditions?["uid"]?.GetValue<string>() is { } uid && uid != Meta(current, "uid"))
            {
                throw new PodMigrateException(ErrorKind.Aborted, $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {Meta(current, "uid")}");
            }
            if (preconditions?["resourceVersion"]?.GetValue<string>() is { } rv && rv != Meta(current, "resourceVersion"))
            {
                throw new PodMigrateException(ErrorKind.Aborted, $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {Meta(current, "resourceVersion")}");
            }
            if (type == BuiltInTypes.Namespaces)
            {
                return (TerminateNamespace(name, current), false);
            }
            var hasFinalizers = current["metadata"]?["finalizers"] is JsonArray { Count: > 0 };
            var grace = ResourceStrategies.For(type).GracePeriod(current, options);
            if (hasFinalizers || grace > 0)
            {
                var terminating = current["metadata"]?["deletionGracePeriodSeconds"].AsLong();
                if (terminating is { } currentGrace && currentGrace <= grace)
                {
                    // Already being deleted, no sooner than asked now: nothing changes.
                    return ((JsonObject)current.DeepClone(), false);
                }
                var updated = (JsonObject)current.DeepClone();
                var metadata = Metadata(updated);
                metadata["deletionTimestamp"] = Timestamp(_options.TimeProvider.GetUtcNow().AddSeconds(grace));
                metadata["deletionGracePeriodSeconds"] = grace;
                Commit(type, ns, name, "MODIFIED", current, updated);
                return ((JsonObject)updated.DeepClone(), false);
            }
            Remove(type, ns, name, current);
            return ((JsonObject)current.DeepClone(), true);
        }
    }

    /// <summary>
    /// Starts a watch after <paramref name="resourceVersion"/> (replaying the history since then), or with synthetic ADDED
    /// events for what exists when it is empty or "0". Null when that version is older than the history: 410 Gone.
    /// </summary>
    public Watcher? Watch(ResourceType type, string? ns, Selector labels, Selector fields, string? resourceVersion)
    {
        lock (_gate)
        {
            return _storage.Watch(type, ns, labels, fields, resourceVersion);
        }
    }

    public void StopWatch(Watcher watcher)
    {
        lock (_gate)
        {
            _storage.StopWatch(watcher);
        }
    }

    /// <summary>Stops the pending namespace clean-ups and budget rechecks (the server is going away with its storage).</summary>
    public void Dispose()
    {
        List<ITimer> cleanups;
        lock (_gate)
        {
            cleanups = [.. _cleanups, .. _budgetRechecks.Values.Select(r => r.Timer)];
            _cleanups.Clear();
            _budgetRechecks.Clear();
        }
        foreach (var cleanup in cleanups)
        {
            cleanup.Dispose();
        }
    }

    /// <summary>RFC 3339 in UTC, seconds precision: what metav1.Time serializes to.</summary>
    public static string Timestamp(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// The update path of PUT, PATCH and binding: resourceVersion precondition, the strategy's update (and, unless
    /// <paramref name="validate"/> is false, its checks), metadata only the server sets, generation, no-op writes.
    /// </summary>
    public JsonObject Write(ResourceType type, string? ns, string name, JsonObject current, JsonObject body, bool statusOnly, bool validate = true)
    {
        var bodyRv = body["metadata"]?["resourceVersion"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(bodyRv) && bodyRv != Meta(current, "resourceVersion"))
        {
            throw new PodMigrateException(ErrorKind.Aborted,
                $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": the object has been modified; please apply your changes to the latest version and try again");
        }
        var strategy = ResourceStrategies.For(type);
        var updated = strategy.PrepareForUpdate(body, current, statusOnly);
        if (validate)
        {
            strategy.ValidateUpdate(name, updated, current);
        }
        updated["apiVersion"] ??= current["apiVersion"]?.DeepClone();
        updated["kind"] = type.Kind;
        var metadata = Metadata(updated);
        var old = (JsonObject)current["metadata"]!;
        foreach (var immutable in new[] { "name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "resourceVersion" })
        {
            metadata[immutable] = old[immutable]?.DeepClone();
        }
        if (JsonNode.DeepEquals(updated, current))
        {
            // A no-op write keeps the version, like the real server (kubectl apply of an unchanged manifest).
            return (JsonObject)current.DeepClone();
        }
        if (!statusOnly && !JsonNode.DeepEquals(updated["spec"], current["spec"]))
        {
            metadata["generation"] = (old["generation"].AsLong() ?? 1) + 1;
        }
        if (metadata["deletionTimestamp"] is not null && metadata["finalizers"] is not JsonArray { Count: > 0 } && strategy.GracePeriod(updated, null) == 0)
        {
            // The last finalizer is gone from an object being deleted: it goes now.
            Remove(type, ns, name, updated);
            return (JsonObject)updated.DeepClone();
        }
        Commit(type, ns, name, "MODIFIED", current, updated);
        return (JsonObject)updated.DeepClone();
    }

    /// <summary>Removes an object, and with a namespace its content, with a CustomResourceDefinition its objects and types.</summary>
    private void Remove(ResourceType type, string? ns, string name, JsonObject obj)
    {
        if (type == BuiltInTypes.Namespaces)
        {
            foreach (var contentType in _types.Values.Where(t => t.Namespaced).DistinctBy(t => t.StorageKey).ToList())
            {
                foreach (var child in _storage.Objects(contentType, name))
                {
                    Remove(contentType, name, Meta(child, "name")!, child);
                }
            }
        }
        else if (type == BuiltInTypes.CustomResourceDefinitions)
        {
            StopServing(obj);
        }
        Commit(type, ns, name, "DELETED", obj, (JsonObject)obj.DeepClone());
    }

    /// <summary>
    /// Stores through <see cref="VersionedStorage.Commit"/>; a change to a pod or a budget then brings the namespace's
    /// disruption budgets up to date (<see cref="SyncBudgets"/>).
    /// </summary>
    public void Commit(ResourceType type, string? ns, string name, string eventType, JsonObject? old, JsonObject obj)
    {
        _storage.Commit(type, ns, name, eventType, old, obj);
        if (ns is not null && (type == BuiltInTypes.Pods || type == BuiltInTypes.PodDisruptionBudgets))
        {
            SyncBudgets(ns);
        }
    }

    /// <summary>What the apiextensions controllers do when a CustomResourceDefinition is created: its versions are served.</summary>
    private void Serve(IReadOnlyList<ResourceType> types)
    {
        foreach (var type in types)
        {
            _types[(type.Group, type.Version, type.Plural)] = type;
        }
    }

    /// <summary>A CustomResourceDefinition goes: its objects go first, then its versions are no longer served.</summary>
    private void StopServing(JsonObject crd)
    {
        var crdTypes = BuiltInTypes.FromCrd(crd);
        if (crdTypes.Count == 0)
        {
            return;
        }
        foreach (var child in _storage.Objects(crdTypes[0]))
        {
            Remove(crdTypes[0], Meta(child, "namespace"), Meta(child, "name")!, child);
        }
        foreach (var crdType in crdTypes)
        {
            _types.Remove((crdType.Group, crdType.Version, crdType.Plural));
        }
    }

    /// <summary>
    /// Deleting a namespace, as a cluster does it: the namespace turns Terminating at once (new content is refused, existing
    /// content can still be read, changed and deleted), and after <see cref="ApiServerOptions.NamespaceCleanupDelay"/> its
    /// content and then the namespace itself are removed, which is the namespace controller's work in a real cluster.
    /// So `kubectl delete -f` of a directory that holds a namespace and its content works in any order.
    /// </summary>
    private JsonObject TerminateNamespace(string name, JsonObject current)
    {
        if (current["metadata"]?["deletionTimestamp"] is not null)
        {
            return (JsonObject)current.DeepClone();
        }
        var updated = (JsonObject)current.DeepClone();
        Metadata(updated)["deletionTimestamp"] = Timestamp(_options.TimeProvider.GetUtcNow());
        updated["status"] = new JsonObject { ["phase"] = "Terminating" };
        Commit(BuiltInTypes.Namespaces, null, name, "MODIFIED", current, updated);
        var uid = Meta(updated, "uid");
        _cleanups.Add(_options.TimeProvider.CreateTimer(_ => CleanUpNamespace(name, uid), null, _options.NamespaceCleanupDelay, Timeout.InfiniteTimeSpan));
        return (JsonObject)updated.DeepClone();
    }

    private void CleanUpNamespace(string name, string? uid)
    {
        lock (_gate)
        {
            if (_storage.TryGet(BuiltInTypes.Namespaces, null, name) is { } ns && Meta(ns, "uid") == uid && ns["metadata"]?["deletionTimestamp"] is not null)
            {
                Remove(BuiltInTypes.Namespaces, null, name, ns);
            }
        }
    }

    /// <summary>
    /// The disruption controller's work, done at once on every change to a pod or a budget of the namespace: each budget's
    /// status recomputed (<see cref="DisruptionBudgets.Status"/>) and written when it changed (straight to the storage: a
    /// budget's own status does not sync the budgets again).
    /// </summary>
    private void SyncBudgets(string ns)
    {
        var budgets = _storage.Objects(BuiltInTypes.PodDisruptionBudgets, ns);
        if (budgets.Count == 0)
        {
            return;
        }
        var pods = _storage.Objects(BuiltInTypes.Pods, ns);
        var now = _options.TimeProvider.GetUtcNow();
        DateTimeOffset? recheck = null;
        foreach (var budget in budgets)
        {
            var status = DisruptionBudgets.Status(budget, pods, now);
            if (!JsonNode.DeepEquals(status, budget["status"]))
            {
                var updated = (JsonObject)budget.DeepClone();
                updated["status"] = status;
                _storage.Commit(BuiltInTypes.PodDisruptionBudgets, ns, Meta(budget, "name")!, "MODIFIED", budget, updated);
            }
            if (DisruptionBudgets.NextExpiry(status) is { } expiry && (recheck is null || expiry < recheck))
            {
                recheck = expiry;
            }
        }
        ScheduleBudgetRecheck(ns, recheck, now);
    }

    /// <summary>
    /// As the disruption controller requeues a budget for when its oldest disruptedPods record expires
    /// (DeletionTimeout after the eviction, if the pod was not deleted meanwhile): a timer that recomputes the namespace's
    /// budgets then, so an eviction whose delete never came gives its disruption back without waiting for another change.
    /// Called under the lock.
    /// </summary>
    private void ScheduleBudgetRecheck(string ns, DateTimeOffset? at, DateTimeOffset now)
    {
        if (_budgetRechecks.TryGetValue(ns, out var pending))
        {
            if (at is { } wanted && pending.At <= wanted)
            {
                return;
            }
            pending.Timer.Dispose();
            _budgetRechecks.Remove(ns);
        }
        if (at is { } due)
        {
            // A tick past the expiry: Status keeps a record while record + DeletionTimeout > now.
            var delay = due - now + TimeSpan.FromMilliseconds(1);
            var timer = _options.TimeProvider.CreateTimer(_ => RecheckBudgets(ns, due), null, delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
            _budgetRechecks[ns] = (due, timer);
        }
    }

    private void RecheckBudgets(string ns, DateTimeOffset due)
    {
        lock (_gate)
        {
            if (_budgetRechecks.TryGetValue(ns, out var pending) && pending.At == due)
            {
                pending.Timer.Dispose();
                _budgetRechecks.Remove(ns);
                SyncBudgets(ns);
            }
        }
    }

    private static JsonObject Metadata(JsonObject obj)
        => obj["metadata"] as JsonObject ?? (JsonObject)(obj["metadata"] = new JsonObject());

    private static string? Meta(JsonObject obj, string field) => obj["metadata"]?[field]?.GetValue<string>();
}
