using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Runtime;

/// <summary>What an informer is to whoever runs it, whatever its kind (see <see cref="ControllerHost"/>).</summary>
internal interface IInformer
{
    string Name { get; }

    bool HasSynced { get; }

    /// <summary>Lists, watches and keeps the cache until <paramref name="cancellationToken"/> is cancelled; then returns.</summary>
    Task RunAsync(CancellationToken cancellationToken);

    /// <summary>Completes once the first list is in the cache and its add events have been delivered.</summary>
    Task WaitForSyncAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Callbacks of an informer. They run one at a time, in the order of the changes, on the informer's loop: keep them
/// quick (enqueue a key) and never block. An exception is logged and does not stop the other handlers.
/// <see cref="OnDelete"/> gets the object's final state (from the watch), or the last state the cache held when the
/// deletion was found by a re-list.
/// </summary>
internal sealed record InformerHandler<T>(Action<T>? OnAdd = null, Action<T, T>? OnUpdate = null, Action<T>? OnDelete = null)
    where T : class
{
    /// <summary>One callback for every change: the new object on add and update, the last one on delete.</summary>
    public static InformerHandler<T> OnAnyChange(Action<T> changed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        return new(changed, (_, current) => changed(current), changed);
    }
}

/// <summary>
/// Reflector and cache for one kind, as client-go's shared informer: lists, then watches from the list's
/// resourceVersion (with bookmarks); when a watch ends it watches again from the last version seen; when that version has
/// expired (410 Gone) it lists again and delivers what the watch missed (adds, updates, and deletes of objects no longer
/// listed). Failures are retried with exponential backoff. The cache is keyed by <see cref="ObjectKey"/> and may be read
/// from any thread; the objects in it are shared: never modify one (copy it first).
/// </summary>
internal sealed class Informer<T> : IInformer
    where T : class, IMetadata<V1ObjectMeta>
{
    // A watch that ends this soon without a single event is the server refusing, not a normal timeout: back off.
    private static readonly TimeSpan ShortWatch = TimeSpan.FromSeconds(1);

    private readonly IKubernetesApi _api;
    private readonly ResourceKind<T> _kind;
    private readonly InformerOptions<T> _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _cacheGate = new();
    private readonly Dictionary<ObjectKey, T> _cache = [];
    // Held while a change is applied and delivered, and while a handler is added, so that a handler sees every change once.
    private readonly Lock _dispatchGate = new();
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private InformerHandler<T>[] _handlers = [];
    private string? _lastResourceVersion;
    private int _running;

    public Informer(IKubernetesApi api, ResourceKind<T> kind, InformerOptions<T>? options, TimeProvider time, ILogger<Informer<T>> logger)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options ?? new InformerOptions<T>();
        _options.Validate();
        _api = api;
        _kind = kind;
        _time = time;
        _logger = logger;
        Name = _options.Namespace is null ? kind.ToString() : $"{kind} in {_options.Namespace}";
    }

    public string Name { get; }

    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>The resourceVersion of the last list or watch event applied (what a restarted watch resumes from).</summary>
    public string? LastSyncResourceVersion => Volatile.Read(ref _lastResourceVersion);

    public int Count
    {
        get
        {
            lock (_cacheGate)
            {
                return _cache.Count;
            }
        }
    }

    public static ObjectKey KeyOf(T obj) => ObjectKey.Of(obj.Metadata);

    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _synced.Task.WaitAsync(cancellationToken);

    public bool TryGet(ObjectKey key, [MaybeNullWhen(false)] out T value)
    {
        lock (_cacheGate)
        {
            return _cache.TryGetValue(key, out value);
        }
    }

    public T? Get(ObjectKey key) => TryGet(key, out var value) ? value : null;

    /// <summary>A deep copy of the cached object, which the caller may change (the cached one is shared); null when not cached.</summary>
    public T? GetCopy(ObjectKey key)
        => TryGet(key, out var value) ? JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(value, _kind.TypeInfo), _kind.TypeInfo) : null;

    /// <summary>The cached objects (of one namespace, or all), ordered by key.</summary>
    public IReadOnlyList<T> List(string? ns = null)
    {
        lock (_cacheGate)
        {
            return [.. _cache.Where(kv => ns is null || kv.Key.Namespace == ns).OrderBy(kv => kv.Key).Select(kv => kv.Value)];
        }
    }

    /// <summary>
    /// Adds callbacks; objects already cached are delivered to <see cref="InformerHandler{T}.OnAdd"/> at once (as
    /// client-go does for a late handler). Dispose the result to remove them.
    /// </summary>
    public IDisposable AddHandler(InformerHandler<T> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_dispatchGate)
        {
            _handlers = [.. _handlers, handler];
            if (handler.OnAdd is { } onAdd)
            {
                foreach (var obj in List())
                {
                    Invoke(onAdd, obj, "add");
                }
            }
        }
        return new Registration(this, handler);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            throw PodMigrateException.FailedPrecondition($"informer {Name} is already running");
        }
        try
        {
            await ListAndWatchAsync(cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task ListAndWatchAsync(CancellationToken cancellationToken)
    {
        var backoff = new ExponentialBackoff(_options.InitialBackoff, _options.MaxBackoff, _options.BackoffJitter);
        // Null: the next step is a list (first start, or the watch's version expired).
        string? resourceVersion = null;
        var expiredBefore = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            var delay = TimeSpan.Zero;
            var doing = resourceVersion is null ? "list" : $"watch from {resourceVersion}";
            try
            {
                if (resourceVersion is null)
                {
                    resourceVersion = await ListAsync(cancellationToken);
                }
                var started = _time.GetTimestamp();
                doing = $"watch from {resourceVersion}";
                var (lastVersion, events) = await WatchAsync(resourceVersion, cancellationToken);
                RuntimeLog.WatchEnded(_logger, Name, resourceVersion, events);
                resourceVersion = lastVersion;
                if (events > 0 || _time.GetElapsedTime(started) >= ShortWatch)
                {
                    backoff.Reset();
                    expiredBefore = false;
                }
                else
                {
                    delay = backoff.Next();
                }
            }
            catch (PodMigrateException e) when (e.IsGone() && !cancellationToken.IsCancellationRequested)
            {
                RuntimeLog.WatchExpired(_logger, Name, resourceVersion ?? "");
                resourceVersion = null;
                // One expiry re-lists at once; expiring again straight after a fresh list means something is wrong: back off.
                delay = expiredBefore ? backoff.Next() : TimeSpan.Zero;
                expiredBefore = true;
            }
            catch (PodMigrateException e) when (!cancellationToken.IsCancellationRequested)
            {
                delay = backoff.Next();
                RuntimeLog.ListWatchFailed(_logger, Name, doing, e.Kind, e.Message, (long)delay.TotalMilliseconds);
            }
            catch (Exception e) when ((e is OperationCanceledException or PodMigrateException) && cancellationToken.IsCancellationRequested)
            {
                // Stopping: a cancelled watch may also surface as a broken stream.
                return;
            }
            if (delay > TimeSpan.Zero && !await _time.TryDelayAsync(delay, cancellationToken))
            {
                return;
            }
        }
    }

    private async Task<string> ListAsync(CancellationToken cancellationToken)
    {
        var list = await _api.ListAsync(_kind, _options.Namespace, new ListOptions
        {
            LabelSelector = _options.LabelSelector,
            FieldSelector = _options.FieldSelector,
        }, cancellationToken);
        var version = list.Metadata.ResourceVersion;
        if (string.IsNullOrEmpty(version))
        {
            throw new PodMigrateException(ErrorKind.Internal, $"list {_kind}: the answer has no resourceVersion to watch from");
        }
        RuntimeLog.Listed(_logger, Name, list.Items.Count, version);
        Replace(list.Items, version);
        return version;
    }

    private async Task<(string ResourceVersion, int Events)> WatchAsync(string resourceVersion, CancellationToken cancellationToken)
    {
        // Spread the watches' ends (as client-go does) so that many informers do not re-watch together.
        var timeout = _options.WatchTimeout * (1 + Random.Shared.NextDouble());
        var options = new ListOptions
        {
            LabelSelector = _options.LabelSelector,
            FieldSelector = _options.FieldSelector,
            ResourceVersion = resourceVersion,
            TimeoutSeconds = Math.Max(1, (int)timeout.TotalSeconds),
            AllowWatchBookmarks = true,
        };
        var events = 0;
        await foreach (var change in _api.WatchAsync(_kind, _options.Namespace, options, cancellationToken))
        {
            events++;
            var version = change.Resource.Metadata?.ResourceVersion;
            Apply(change);
            if (!string.IsNullOrEmpty(version))
            {
                resourceVersion = version;
                Volatile.Write(ref _lastResourceVersion, version);
            }
        }
        return (resourceVersion, events);
    }

    private void Apply(WatchEvent<T> change)
    {
        if (change.Type == WatchEventType.Bookmark)
        {
            return;
        }
        var obj = change.Resource;
        var key = KeyOf(obj);
        lock (_dispatchGate)
        {
            T? old;
            lock (_cacheGate)
            {
                _cache.TryGetValue(key, out old);
                if (change.Type == WatchEventType.Deleted)
                {
                    _cache.Remove(key);
                }
                else
                {
                    _cache[key] = obj;
                }
            }
            switch (change.Type)
            {
                case WatchEventType.Deleted when old is not null:
                    Deliver(h => h.OnDelete, obj, "delete");
                    break;
                case WatchEventType.Added or WatchEventType.Modified when old is null:
                    Deliver(h => h.OnAdd, obj, "add");
                    break;
                case WatchEventType.Added or WatchEventType.Modified:
                    DeliverUpdate(old, obj);
                    break;
            }
        }
    }

    /// <summary>
    /// Makes the cache equal to a fresh list and delivers the differences, as client-go's DeltaFIFO.Replace: an object
    /// no longer listed is deleted, one with a new resourceVersion is updated, one with a new uid under the same key was
    /// deleted and created again while we were not watching.
    /// </summary>
    private void Replace(List<T> items, string resourceVersion)
    {
        int added = 0, updated = 0, deleted = 0;
        lock (_dispatchGate)
        {
            var listed = new HashSet<ObjectKey>();
            foreach (var obj in items)
            {
                var key = KeyOf(obj);
                listed.Add(key);
                T? old;
                lock (_cacheGate)
                {
                    _cache.TryGetValue(key, out old);
                    _cache[key] = obj;
                }
                if (old is null)
                {
                    added++;
                    Deliver(h => h.OnAdd, obj, "add");
                    continue;
                }
                var was = old.Metadata;
                var now = obj.Metadata;
                if (was.Uid != now.Uid)
                {
                    deleted++;
                    added++;
                    Deliver(h => h.OnDelete, old, "delete");
                    Deliver(h => h.OnAdd, obj, "add");
                }
                else if (was.ResourceVersion != now.ResourceVersion)
                {
                    updated++;
                    DeliverUpdate(old, obj);
                }
            }
            List<T> gone;
            lock (_cacheGate)
            {
                gone = [.. _cache.Where(kv => !listed.Contains(kv.Key)).OrderBy(kv => kv.Key).Select(kv => kv.Value)];
                foreach (var obj in gone)
                {
                    _cache.Remove(KeyOf(obj));
                }
            }
            foreach (var obj in gone)
            {
                deleted++;
                Deliver(h => h.OnDelete, obj, "delete");
            }
            Volatile.Write(ref _lastResourceVersion, resourceVersion);
        }
        if (_synced.TrySetResult())
        {
            RuntimeLog.Synced(_logger, Name, items.Count);
        }
        else
        {
            RuntimeLog.Relisted(_logger, Name, added, updated, deleted);
        }
    }

    private void Deliver(Func<InformerHandler<T>, Action<T>?> pick, T obj, string what)
    {
        foreach (var handler in _handlers)
        {
            if (pick(handler) is { } action)
            {
                Invoke(action, obj, what);
            }
        }
    }

    private void DeliverUpdate(T old, T current)
    {
        foreach (var handler in _handlers)
        {
            if (handler.OnUpdate is { } onUpdate)
            {
                try
                {
                    onUpdate(old, current);
                }
                catch (Exception e)
                {
                    // A handler's bug must not stop the informer: the cache and the other handlers go on.
                    RuntimeLog.HandlerFailed(_logger, e, Name, "update", KeyOf(current).ToString());
                }
            }
        }
    }

    private void Invoke(Action<T> action, T obj, string what)
    {
        try
        {
            action(obj);
        }
        catch (Exception e)
        {
            // A handler's bug must not stop the informer: the cache and the other handlers go on.
            RuntimeLog.HandlerFailed(_logger, e, Name, what, KeyOf(obj).ToString());
        }
    }

    private void RemoveHandler(InformerHandler<T> handler)
    {
        lock (_dispatchGate)
        {
            _handlers = [.. _handlers.Where(h => !ReferenceEquals(h, handler))];
        }
    }

    private sealed class Registration(Informer<T> informer, InformerHandler<T> handler) : IDisposable
    {
        private Informer<T>? _informer = informer;

        public void Dispose() => Interlocked.Exchange(ref _informer, null)?.RemoveHandler(handler);
    }
}

/// <summary>What an <see cref="Informer{T}"/> lists and watches, and how it retries.</summary>
internal sealed class InformerOptions<T>
    where T : class
{
    /// <summary>One namespace, or null for all (and for cluster-scoped kinds).</summary>
    public string? Namespace { get; init; }

    /// <summary>e.g. "app=counter"; objects that stop matching are delivered as deleted.</summary>
    public string? LabelSelector { get; init; }

    /// <summary>e.g. "spec.nodeName=node-a".</summary>
    public string? FieldSelector { get; init; }

    /// <summary>The server ends each watch after this (stretched by up to 2×); the informer then watches again from where it was.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Each retry delay is stretched by a random factor in [1, 1 + BackoffJitter).</summary>
    public double BackoffJitter { get; init; } = 0.5;

    public void Validate()
    {
        if (WatchTimeout < TimeSpan.FromSeconds(1))
        {
            throw PodMigrateException.InvalidArgument($"informer WatchTimeout must be at least 1 s, not {WatchTimeout}");
        }
        if (InitialBackoff <= TimeSpan.Zero || MaxBackoff < InitialBackoff)
        {
            throw PodMigrateException.InvalidArgument($"informer backoff needs 0 < InitialBackoff ({InitialBackoff}) <= MaxBackoff ({MaxBackoff})");
        }
        if (BackoffJitter < 0)
        {
            throw PodMigrateException.InvalidArgument($"informer BackoffJitter must not be negative ({BackoffJitter})");
        }
    }
}
