using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Policy;

namespace PodMigrate.Kube.ApiServer;

/// <summary>One change as a watcher sees it.</summary>
internal readonly record struct StoredEvent(long ResourceVersion, string Type, JsonObject Object);

/// <summary>A watch stream: the events of one resource that pass its namespace and selectors.</summary>
internal sealed class Watcher(string storageKey, string? ns, Selector labels, Selector fields)
{
    public string StorageKey { get; } = storageKey;

    public Channel<StoredEvent> Events { get; } = Channel.CreateUnbounded<StoredEvent>(new UnboundedChannelOptions { SingleReader = true });

    public bool InScope(JsonObject obj) => ns is null || Meta(obj, "namespace") == ns;

    public bool Matches(JsonObject obj) => InScope(obj) && labels.Matches(obj) && fields.Matches(obj);

    /// <summary>A change seen through the selectors: an object that enters them is ADDED, one that leaves them DELETED.</summary>
    public void Offer(long rv, string type, JsonObject? old, JsonObject current)
    {
        var was = old is not null && Matches(old);
        var now = Matches(current);
        var seen = type switch
        {
            "MODIFIED" when was && now => "MODIFIED",
            "MODIFIED" when now => "ADDED",
            "MODIFIED" when was => "DELETED",
            "ADDED" or "DELETED" when now => type,
            _ => null,
        };
        if (seen is not null)
        {
            Events.Writer.TryWrite(new StoredEvent(rv, seen, current));
        }
    }

    private static string? Meta(JsonObject obj, string field) => obj["metadata"]?[field]?.GetValue<string>();
}

/// <summary>
/// The API server's storage: every object as JSON (so fields this server does not know survive), one global
/// resourceVersion counter, a bounded history of changes for watches, and the set of served resource types
/// (built-ins plus those of the CustomResourceDefinitions stored). One lock guards it all: correctness over throughput.
/// </summary>
internal sealed class ObjectStore : IDisposable
{
    private const string GenerateNameChars = "bcdfghjklmnpqrstvwxz2456789";

    private readonly Lock _gate = new();
    private readonly Dictionary<string, SortedDictionary<string, JsonObject>> _objects = new(StringComparer.Ordinal);
    private readonly Queue<(long Rv, string Key, string Type, JsonObject? Old, JsonObject Object)> _history = new();
    private readonly List<Watcher> _watchers = [];
    private readonly List<ITimer> _cleanups = [];
    /// <summary>Per namespace, the disruption controller's next recheck of its budgets: when a disruptedPods record expires.</summary>
    private readonly Dictionary<string, (DateTimeOffset At, ITimer Timer)> _budgetRechecks = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Group, string Version, string Plural), ResourceType> _types = [];
    private readonly ApiServerOptions _options;
    private long _resourceVersion;
    private long _compactedThrough;
    private bool _syncingBudgets;

    public ObjectStore(ApiServerOptions options)
    {
        _options = options;
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
                return _resourceVersion.ToString(CultureInfo.InvariantCulture);
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
            return (JsonObject)Find(type, ns, name).DeepClone();
        }
    }

    public (List<JsonObject> Items, string ResourceVersion) List(ResourceType type, string? ns, Selector labels, Selector fields)
    {
        lock (_gate)
        {
            var items = Bucket(type).Values
                .Where(o => (ns is null || Meta(o, "namespace") == ns) && labels.Matches(o) && fields.Matches(o))
                .Select(o => (JsonObject)o.DeepClone())
                .ToList();
            return (items, _resourceVersion.ToString(CultureInfo.InvariantCulture));
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
                if (!Bucket(BuiltInTypes.Namespaces).TryGetValue(Key(null, ns!), out var owner))
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
            var bucket = Bucket(type);
            if (bucket.ContainsKey(Key(ns, name)))
            {
                throw new PodMigrateException(ErrorKind.AlreadyExists, $"{type.QualifiedName} \"{name}\" already exists");
            }
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Timestamp(_options.TimeProvider.GetUtcNow());
            metadata["generation"] = 1;
            metadata.Remove("deletionTimestamp");
            metadata.Remove("deletionGracePeriodSeconds");
            PrepareForCreate(type, obj);
            Commit(type, ns, name, "ADDED", null, obj);
            return (JsonObject)obj.DeepClone();
        }
    }

    /// <summary>PUT: the whole object (or, with <paramref name="statusOnly"/>, only its status) replaces the stored one.</summary>
    public JsonObject Update(ResourceType type, string? ns, string name, JsonObject body, bool statusOnly)
    {
        lock (_gate)
        {
            var current = Find(type, ns, name);
            return Write(type, ns, name, current, body, statusOnly);
        }
    }

    /// <summary>Applies a patch; <paramref name="validate"/> sees the patched object before it is written and may refuse it by throwing.</summary>
    public JsonObject Patch(ResourceType type, string? ns, string name, string contentType, JsonNode? patch, bool statusOnly, Action<JsonObject>? validate = null)
    {
        lock (_gate)
        {
            var current = Find(type, ns, name);
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

    public JsonObject Bind(string ns, string name, JsonObject binding)
    {
        lock (_gate)
        {
            var pod = Find(BuiltInTypes.Pods, ns, name);
            var node = binding["target"]?["name"]?.GetValue<string>();
            if (string.IsNullOrEmpty(node))
            {
                throw PodMigrateException.InvalidArgument("Binding target.name is required");
            }
            if (pod["spec"]?["nodeName"]?.GetValue<string>() is { Length: > 0 } bound)
            {
                throw new PodMigrateException(ErrorKind.Aborted, $"Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{bound}\"");
            }
            var updated = (JsonObject)pod.DeepClone();
            ((JsonObject)(updated["spec"] ??= new JsonObject()))["nodeName"] = node;
            Write(BuiltInTypes.Pods, ns, name, pod, updated, statusOnly: false, allowNodeNameChange: true);
            return new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success", ["code"] = 201 };
        }
    }

    /// <summary>
    /// DELETE: gone at once, unless finalizers remain or a pod bound to a node has a grace period: then deletionTimestamp is
    /// set and the object stays until the finalizers are removed or a delete with grace period 0 (the kubelet's) comes.
    /// Returns the object and whether it is gone.
    /// </summary>
    public (JsonObject Object, bool Gone) Delete(ResourceType type, string? ns, string name, JsonObject? options)
    {
        lock (_gate)
        {
            var current = Find(type, ns, name);
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
            var grace = GracePeriod(type, current, options);
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
    /// POST pods/{name}/eviction, as kube-apiserver's eviction REST does it (admission has already run): a pod that is
    /// terminal, Pending or already being deleted goes without a budget check; a pod covered by more than one budget is
    /// refused (500); one budget must allow a disruption (else 429 with its cause), which is spent and the pod recorded in
    /// the budget's disruptedPods; then the pod gets the DisruptionTarget condition and is deleted gracefully.
    /// A pod that is not Ready may go without spending a disruption when the budget is healthy (unhealthyPodEvictionPolicy).
    /// </summary>
    public JsonObject Evict(string ns, string name, JsonObject eviction)
    {
        lock (_gate)
        {
            var pod = Find(BuiltInTypes.Pods, ns, name);
            var options = eviction["deleteOptions"] as JsonObject;
            var now = _options.TimeProvider.GetUtcNow();
            var phase = pod["status"]?["phase"]?.GetValue<string>();
            var ignoresBudgets = pod["metadata"]?["deletionTimestamp"] is not null || phase is "Succeeded" or "Failed" or "Pending";
            if (!ignoresBudgets)
            {
                var budgets = Bucket(BuiltInTypes.PodDisruptionBudgets).Values.Where(b => DisruptionBudgets.Covers(b, pod)).ToList();
                if (budgets.Count > 1)
                {
                    throw ApiStatusException.Internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
                }
                if (budgets is [var budget] && !(!DisruptionBudgets.IsReady(pod) && DisruptionBudgets.LetsUnhealthyPodGo(budget)))
                {
                    var spent = DisruptionBudgets.CheckAndDecrement(budget, name, now);
                    Commit(BuiltInTypes.PodDisruptionBudgets, ns, Meta(budget, "name")!, "MODIFIED", budget, spent);
                }
                pod = Find(BuiltInTypes.Pods, ns, name);
                var marked = (JsonObject)pod.DeepClone();
                var status = marked["status"] as JsonObject ?? (JsonObject)(marked["status"] = new JsonObject());
                var conditions = status["conditions"] as JsonArray ?? (JsonArray)(status["conditions"] = new JsonArray());
                if (!conditions.OfType<JsonObject>().Any(c => c["type"]?.GetValue<string>() == "DisruptionTarget"))
                {
                    conditions.Add(new JsonObject
                    {
                        ["type"] = "DisruptionTarget",
                        ["status"] = "True",
                        ["lastTransitionTime"] = Timestamp(now),
                        ["reason"] = "EvictionByEvictionAPI",
                        ["message"] = "Eviction API: evicting",
                    });
                    Commit(BuiltInTypes.Pods, ns, name, "MODIFIED", pod, marked);
                }
            }
            Delete(BuiltInTypes.Pods, ns, name, options);
            return new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success", ["code"] = 201 };
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
            var watcher = new Watcher(type.StorageKey, ns, labels, fields);
            if (string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0")
            {
                foreach (var obj in Bucket(type).Values.Where(watcher.Matches))
                {
                    watcher.Events.Writer.TryWrite(new StoredEvent(_resourceVersion, "ADDED", (JsonObject)obj.DeepClone()));
                }
            }
            else
            {
                if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
                {
                    throw PodMigrateException.InvalidArgument($"invalid resourceVersion \"{resourceVersion}\"");
                }
                if (from < _compactedThrough)
                {
                    return null;
                }
                foreach (var change in _history.Where(h => h.Rv > from && h.Key == type.StorageKey))
                {
                    watcher.Offer(change.Rv, change.Type, change.Old, change.Object);
                }
            }
            _watchers.Add(watcher);
            return watcher;
        }
    }

    public void StopWatch(Watcher watcher)
    {
        lock (_gate)
        {
            _watchers.Remove(watcher);
        }
        watcher.Events.Writer.TryComplete();
    }

    private JsonObject Write(ResourceType type, string? ns, string name, JsonObject current, JsonObject body, bool statusOnly, bool allowNodeNameChange = false)
    {
        var bodyRv = body["metadata"]?["resourceVersion"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(bodyRv) && bodyRv != Meta(current, "resourceVersion"))
        {
            throw new PodMigrateException(ErrorKind.Aborted,
                $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": the object has been modified; please apply your changes to the latest version and try again");
        }
        JsonObject updated;
        if (statusOnly)
        {
            updated = (JsonObject)current.DeepClone();
            updated["status"] = body["status"]?.DeepClone();
        }
        else
        {
            updated = (JsonObject)body.DeepClone();
            if (type.HasStatus)
            {
                updated["status"] = current["status"]?.DeepClone();
            }
            var spec = current["spec"]?["nodeName"]?.GetValue<string>();
            if (type == BuiltInTypes.Pods && !allowNodeNameChange && spec is { Length: > 0 } && updated["spec"]?["nodeName"]?.GetValue<string>() != spec)
            {
                throw PodMigrateException.InvalidArgument($"Pod \"{name}\" is invalid: spec.nodeName: field is immutable once set");
            }
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
        if (metadata["deletionTimestamp"] is not null && metadata["finalizers"] is not JsonArray { Count: > 0 } && GracePeriod(type, updated, null) == 0)
        {
            // The last finalizer is gone from an object being deleted: it goes now.
            Remove(type, ns, name, updated);
            return (JsonObject)updated.DeepClone();
        }
        Commit(type, ns, name, "MODIFIED", current, updated);
        return (JsonObject)updated.DeepClone();
    }

    /// <summary>Seconds a deletion waits: only pods bound to a node wait (for their kubelet); everything else goes at once.</summary>
    private static long GracePeriod(ResourceType type, JsonObject obj, JsonObject? options)
    {
        if (type != BuiltInTypes.Pods || obj["spec"]?["nodeName"] is null)
        {
            return 0;
        }
        return options?["gracePeriodSeconds"].AsLong()
            ?? obj["metadata"]?["deletionGracePeriodSeconds"].AsLong()
            ?? obj["spec"]?["terminationGracePeriodSeconds"].AsLong()
            ?? 30;
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
            if (Bucket(BuiltInTypes.Namespaces).TryGetValue(name, out var ns) && Meta(ns, "uid") == uid && ns["metadata"]?["deletionTimestamp"] is not null)
            {
                Remove(BuiltInTypes.Namespaces, null, name, ns);
            }
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

    /// <summary>What the real server's storage writes on create by itself: status phases and defaults that printers show.</summary>
    private void PrepareForCreate(ResourceType type, JsonObject obj)
    {
        if (type == BuiltInTypes.Pods)
        {
            obj["status"] = new JsonObject { ["phase"] = "Pending", ["qosClass"] = "BestEffort" };
        }
        else if (type == BuiltInTypes.Namespaces)
        {
            obj["status"] = new JsonObject { ["phase"] = "Active" };
            // The label the real server's namespace defaulting sets: what namespaceSelectors (webhooks, policies) key on.
            var labels = Metadata(obj)["labels"] as JsonObject ?? (JsonObject)(Metadata(obj)["labels"] = new JsonObject());
            labels["kubernetes.io/metadata.name"] = Meta(obj, "name");
        }
        else if (type == BuiltInTypes.PersistentVolumes || type == BuiltInTypes.PersistentVolumeClaims)
        {
            // Pending until a binder (the PV controller, absent here) binds them.
            obj["status"] = new JsonObject { ["phase"] = "Pending" };
        }
        else if (type == BuiltInTypes.Secrets)
        {
            obj["type"] ??= "Opaque";
        }
        else if (type == BuiltInTypes.Deployments || type == BuiltInTypes.DaemonSets)
        {
            // Written by their controllers only, never by a create. (A Node, unlike these, may be created with its status.)
            obj.Remove("status");
        }
        else if (type == BuiltInTypes.CustomResourceDefinitions)
        {
            RegisterCrd(obj);
        }
        else if (type == BuiltInTypes.PodDisruptionBudgets)
        {
            // Written by the disruption controller (SyncBudgets, right after the create is committed).
            obj.Remove("status");
        }
        else if (type.IsCustom && type.HasStatus)
        {
            obj.Remove("status");
        }
    }

    private void RegisterCrd(JsonObject crd)
    {
        var types = BuiltInTypes.FromCrd(crd);
        if (types.Count == 0)
        {
            throw PodMigrateException.InvalidArgument("CustomResourceDefinition is invalid: spec.group, spec.names.plural, spec.names.kind and a served version are required");
        }
        var expected = $"{types[0].Plural}.{types[0].Group}";
        if (crd["metadata"]?["name"]?.GetValue<string>() != expected)
        {
            throw PodMigrateException.InvalidArgument($"CustomResourceDefinition is invalid: metadata.name: must be spec.names.plural+\".\"+spec.group ({expected})");
        }
        foreach (var type in types)
        {
            _types[(type.Group, type.Version, type.Plural)] = type;
        }
        var now = Timestamp(_options.TimeProvider.GetUtcNow());
        crd["status"] = new JsonObject
        {
            ["acceptedNames"] = crd["spec"]!["names"]!.DeepClone(),
            ["storedVersions"] = new JsonArray(types.Select(t => (JsonNode?)t.Version).ToArray()),
            ["conditions"] = new JsonArray(
                new JsonObject { ["type"] = "NamesAccepted", ["status"] = "True", ["reason"] = "NoConflicts", ["message"] = "no conflicts found", ["lastTransitionTime"] = now },
                new JsonObject { ["type"] = "Established", ["status"] = "True", ["reason"] = "InitialNamesAccepted", ["message"] = "the initial names have been accepted", ["lastTransitionTime"] = now }),
        };
    }

    private void Remove(ResourceType type, string? ns, string name, JsonObject obj)
    {
        if (type == BuiltInTypes.Namespaces)
        {
            foreach (var bucketType in _types.Values.Where(t => t.Namespaced).DistinctBy(t => t.StorageKey).ToList())
            {
                foreach (var (_, child) in Bucket(bucketType).Where(kv => Meta(kv.Value, "namespace") == name).ToList())
                {
                    Remove(bucketType, name, Meta(child, "name")!, child);
                }
            }
        }
        else if (type == BuiltInTypes.CustomResourceDefinitions)
        {
            var crdTypes = BuiltInTypes.FromCrd(obj);
            if (crdTypes.Count > 0)
            {
                foreach (var (_, child) in Bucket(crdTypes[0]).ToList())
                {
                    Remove(crdTypes[0], Meta(child, "namespace"), Meta(child, "name")!, child);
                }
                foreach (var crdType in crdTypes)
                {
                    _types.Remove((crdType.Group, crdType.Version, crdType.Plural));
                }
            }
        }
        Commit(type, ns, name, "DELETED", obj, (JsonObject)obj.DeepClone());
    }

    /// <summary>Stores (or removes, for DELETED) under a new resourceVersion, records the change and tells the watchers.</summary>
    private void Commit(ResourceType type, string? ns, string name, string eventType, JsonObject? old, JsonObject obj)
    {
        var rv = ++_resourceVersion;
        Metadata(obj)["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
        var bucket = Bucket(type);
        if (eventType == "DELETED")
        {
            bucket.Remove(Key(ns, name));
        }
        else
        {
            bucket[Key(ns, name)] = obj;
        }
        var snapshot = (JsonObject)obj.DeepClone();
        _history.Enqueue((rv, type.StorageKey, eventType, old, snapshot));
        while (_history.Count > _options.WatchHistory)
        {
            _compactedThrough = _history.Dequeue().Rv;
        }
        foreach (var watcher in _watchers.Where(w => w.StorageKey == type.StorageKey))
        {
            watcher.Offer(rv, eventType, old, snapshot);
        }
        if (!_syncingBudgets && ns is not null && (type == BuiltInTypes.Pods || type == BuiltInTypes.PodDisruptionBudgets))
        {
            SyncBudgets(ns);
        }
    }

    /// <summary>
    /// The disruption controller's work, done at once on every change to a pod or a budget of the namespace: each budget's
    /// status recomputed (<see cref="DisruptionBudgets.Status"/>) and written when it changed.
    /// </summary>
    private void SyncBudgets(string ns)
    {
        _syncingBudgets = true;
        try
        {
            var budgets = Bucket(BuiltInTypes.PodDisruptionBudgets).Values.Where(b => Meta(b, "namespace") == ns).ToList();
            if (budgets.Count == 0)
            {
                return;
            }
            var pods = Bucket(BuiltInTypes.Pods).Values.Where(p => Meta(p, "namespace") == ns).ToList();
            var now = _options.TimeProvider.GetUtcNow();
            DateTimeOffset? recheck = null;
            foreach (var budget in budgets)
            {
                var status = DisruptionBudgets.Status(budget, pods, now);
                if (!JsonNode.DeepEquals(status, budget["status"]))
                {
                    var updated = (JsonObject)budget.DeepClone();
                    updated["status"] = status;
                    Commit(BuiltInTypes.PodDisruptionBudgets, ns, Meta(budget, "name")!, "MODIFIED", budget, updated);
                }
                if (DisruptionBudgets.NextExpiry(status) is { } expiry && (recheck is null || expiry < recheck))
                {
                    recheck = expiry;
                }
            }
            ScheduleBudgetRecheck(ns, recheck, now);
        }
        finally
        {
            _syncingBudgets = false;
        }
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

    private JsonObject Find(ResourceType type, string? ns, string name)
        => Bucket(type).TryGetValue(Key(type.Namespaced ? ns : null, name), out var obj)
            ? obj
            : throw PodMigrateException.NotFound($"{type.QualifiedName} \"{name}\" not found");

    private SortedDictionary<string, JsonObject> Bucket(ResourceType type)
    {
        if (!_objects.TryGetValue(type.StorageKey, out var bucket))
        {
            bucket = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
            _objects[type.StorageKey] = bucket;
        }
        return bucket;
    }

    private static string Key(string? ns, string name) => ns is null ? name : $"{ns}/{name}";

    private static JsonObject Metadata(JsonObject obj)
        => obj["metadata"] as JsonObject ?? (JsonObject)(obj["metadata"] = new JsonObject());

    private static string? Meta(JsonObject obj, string field) => obj["metadata"]?[field]?.GetValue<string>();

    /// <summary>RFC 3339 in UTC, seconds precision: what metav1.Time serializes to.</summary>
    public static string Timestamp(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
