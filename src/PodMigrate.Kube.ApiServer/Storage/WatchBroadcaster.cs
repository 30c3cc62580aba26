using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace PodMigrate.Kube.ApiServer.Storage;

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
/// The watch fan-out (kube-apiserver's watch cache dispatching to its watchers): every committed change is offered to
/// the open watches of its resource, each of which filters it through its own scope and selectors. Not thread-safe:
/// the registry's lock (<see cref="ObjectStore"/>) is held around every call, so a watch never misses or doubles a change.
/// </summary>
internal sealed class WatchBroadcaster
{
    private readonly List<Watcher> _watchers = [];

    public void Add(Watcher watcher) => _watchers.Add(watcher);

    /// <summary>Ends a watch: it gets no more changes and its stream completes.</summary>
    public void Remove(Watcher watcher)
    {
        _watchers.Remove(watcher);
        watcher.Events.Writer.TryComplete();
    }

    public void Broadcast(string storageKey, long rv, string type, JsonObject? old, JsonObject current)
    {
        foreach (var watcher in _watchers.Where(w => w.StorageKey == storageKey))
        {
            watcher.Offer(rv, type, old, current);
        }
    }
}
