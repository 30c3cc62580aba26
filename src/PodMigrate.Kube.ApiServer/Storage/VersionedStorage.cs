using System.Globalization;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Storage;

/// <summary>
/// The storage layer under the registry (what etcd and the watch cache are to kube-apiserver): every object as JSON (so
/// fields this server does not know survive) under its resource's storage key and "namespace/name", one global
/// resourceVersion counter stamped on every write, a bounded window of recent changes that watches replay from, and 410
/// Gone for a watch from a resourceVersion older than that window. It knows nothing of kinds: the registry's strategies
/// decide what is written. Not thread-safe: the registry (<see cref="ObjectStore"/>) holds its one lock around every call.
/// </summary>
internal sealed class VersionedStorage(int historyLimit)
{
    private readonly Dictionary<string, SortedDictionary<string, JsonObject>> _objects = new(StringComparer.Ordinal);
    private readonly Queue<(long Rv, string Key, string Type, JsonObject? Old, JsonObject Object)> _history = new();
    private readonly WatchBroadcaster _broadcaster = new();
    private long _resourceVersion;
    private long _compactedThrough;

    /// <summary>The resourceVersion of the last write.</summary>
    public string ResourceVersion => _resourceVersion.ToString(CultureInfo.InvariantCulture);

    /// <summary>The stored object (not a copy), or null.</summary>
    public JsonObject? TryGet(ResourceType type, string? ns, string name)
        => Bucket(type).GetValueOrDefault(Key(type.Namespaced ? ns : null, name));

    /// <summary>The stored object (not a copy); NotFound when there is none.</summary>
    public JsonObject Get(ResourceType type, string? ns, string name)
        => TryGet(type, ns, name) ?? throw PodMigrateException.NotFound($"{type.QualifiedName} \"{name}\" not found");

    /// <summary>The stored objects of a resource (not copies) in key order, of one namespace when <paramref name="ns"/> is set.</summary>
    public List<JsonObject> Objects(ResourceType type, string? ns = null)
        => [.. Bucket(type).Values.Where(o => ns is null || Meta(o, "namespace") == ns)];

    /// <summary>
    /// Stores <paramref name="obj"/> (or removes it, for DELETED) under a new resourceVersion, which it stamps on the object,
    /// records the change in the history window and offers it to the watches of the resource.
    /// </summary>
    public void Commit(ResourceType type, string? ns, string name, string eventType, JsonObject? old, JsonObject obj)
    {
        var rv = ++_resourceVersion;
        var metadata = obj["metadata"] as JsonObject ?? (JsonObject)(obj["metadata"] = new JsonObject());
        metadata["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
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
        while (_history.Count > historyLimit)
        {
            _compactedThrough = _history.Dequeue().Rv;
        }
        _broadcaster.Broadcast(type.StorageKey, rv, eventType, old, snapshot);
    }

    /// <summary>
    /// Starts a watch after <paramref name="resourceVersion"/> (replaying the history since then), or with synthetic ADDED
    /// events for what exists when it is empty or "0". Null when that version is older than the history: 410 Gone.
    /// </summary>
    public Watcher? Watch(ResourceType type, string? ns, Selector labels, Selector fields, string? resourceVersion)
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
        _broadcaster.Add(watcher);
        return watcher;
    }

    public void StopWatch(Watcher watcher) => _broadcaster.Remove(watcher);

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

    private static string? Meta(JsonObject obj, string field) => obj["metadata"]?[field]?.GetValue<string>();
}
