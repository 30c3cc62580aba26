using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// client-go's rate-limited work queue: a key queued twice is queued once; a key being processed is never handed out
/// again until <see cref="Done"/> (an add meanwhile queues it again after); <see cref="AddAfter"/> delays an add;
/// <see cref="AddRateLimited"/> delays it by the key's own exponential backoff until <see cref="Forget"/>.
/// Thread-safe. Every <see cref="GetAsync"/> that returns a key must be followed by <see cref="Done"/> for it.
/// </summary>
internal sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly Queue<TKey> _queue = new();
    // Keys that need processing: those queued, and those added again while being processed.
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Dictionary<TKey, Delayed> _waiting = [];
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly LinkedList<TaskCompletionSource<(bool Shutdown, TKey Key)>> _getters = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly WorkQueueOptions _options;
    private readonly TimeProvider _time;
    private bool _shuttingDown;

    public WorkQueue(WorkQueueOptions? options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _options = options ?? new WorkQueueOptions();
        _options.Validate();
        _time = time;
    }

    /// <summary>Keys ready to be handed out (not those being processed or waiting for their delay).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Keys handed out and not yet <see cref="Done"/>.</summary>
    public int ProcessingCount
    {
        get
        {
            lock (_gate)
            {
                return _processing.Count;
            }
        }
    }

    /// <summary>Keys waiting for an <see cref="AddAfter"/> or <see cref="AddRateLimited"/> delay.</summary>
    public int WaitingCount
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Callers of <see cref="GetAsync"/> waiting for a key.</summary>
    public int GettersWaiting
    {
        get
        {
            lock (_gate)
            {
                return _getters.Count;
            }
        }
    }

    public bool IsShuttingDown
    {
        get
        {
            lock (_gate)
            {
                return _shuttingDown;
            }
        }
    }

    /// <summary>Queues the key unless it is queued already; after shutdown, does nothing.</summary>
    public void Add(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            AddLocked(key);
        }
    }

    /// <summary>
    /// Queues the key after <paramref name="delay"/>. A key already waiting keeps the earlier of its two times; a key
    /// that is queued meanwhile stays queued once.
    /// </summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }
            if (delay <= TimeSpan.Zero)
            {
                AddLocked(key);
                return;
            }
            var due = _time.GetUtcNow() + delay;
            if (_waiting.TryGetValue(key, out var existing))
            {
                if (existing.Due <= due)
                {
                    return;
                }
                existing.Timer?.Dispose();
            }
            var entry = new Delayed(key, due);
            _waiting[key] = entry;
            entry.Timer = _time.CreateTimer(_ => Fire(entry), null, delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Queues the key after its backoff (<see cref="WorkQueueOptions.BaseDelay"/> doubling per failure up to the cap); returns that delay.</summary>
    public TimeSpan AddRateLimited(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        TimeSpan delay;
        lock (_gate)
        {
            var failures = _failures.GetValueOrDefault(key);
            _failures[key] = failures == int.MaxValue ? failures : failures + 1;
            delay = ExponentialBackoff.Delay(_options.BaseDelay, _options.MaxDelay, failures);
        }
        AddAfter(key, delay);
        return delay;
    }

    /// <summary>Ends the key's backoff: its next <see cref="AddRateLimited"/> waits the base delay again.</summary>
    public void Forget(TKey key)
    {
        lock (_gate)
        {
            _failures.Remove(key);
        }
    }

    /// <summary>How many times the key has been rate-limited since it was last forgotten.</summary>
    public int NumRequeues(TKey key)
    {
        lock (_gate)
        {
            return _failures.GetValueOrDefault(key);
        }
    }

    /// <summary>
    /// The next key, which is now being processed (call <see cref="Done"/> when finished); waits for one if none is queued.
    /// Shutdown = true once the queue is shutting down (queued keys are not handed out any more).
    /// </summary>
    public async Task<(bool Shutdown, TKey Key)> GetAsync(CancellationToken cancellationToken)
    {
        LinkedListNode<TaskCompletionSource<(bool, TKey)>> node;
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return (true, default!);
            }
            if (_queue.TryDequeue(out var key))
            {
                _dirty.Remove(key);
                _processing.Add(key);
                return (false, key);
            }
            node = _getters.AddLast(new TaskCompletionSource<(bool, TKey)>(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        using var registration = cancellationToken.Register(() =>
        {
            bool removed;
            lock (_gate)
            {
                removed = node.List is not null;
                if (removed)
                {
                    _getters.Remove(node);
                }
            }
            // A getter already handed a key keeps it: its caller owns that key and will call Done.
            if (removed)
            {
                node.Value.TrySetCanceled(cancellationToken);
            }
        });
        return await node.Value.Task;
    }

    /// <summary>Ends the processing of a key; if it was added meanwhile, it is queued again now.</summary>
    public void Done(TKey key)
    {
        lock (_gate)
        {
            if (!_processing.Remove(key))
            {
                throw PodMigrateException.FailedPrecondition($"work queue: Done({key}) for a key that is not being processed");
            }
            if (_shuttingDown)
            {
                if (_processing.Count == 0)
                {
                    _drained.TrySetResult();
                }
                return;
            }
            if (_dirty.Contains(key))
            {
                Enqueue(key);
            }
        }
    }

    /// <summary>Stops handing out keys: waiting getters get Shutdown, queued and delayed keys are dropped, adds are ignored.</summary>
    public void ShutDown()
    {
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }
            _shuttingDown = true;
            foreach (var entry in _waiting.Values)
            {
                entry.Timer?.Dispose();
            }
            _waiting.Clear();
            _queue.Clear();
            _dirty.Clear();
            foreach (var getter in _getters)
            {
                getter.TrySetResult((true, default!));
            }
            _getters.Clear();
            if (_processing.Count == 0)
            {
                _drained.TrySetResult();
            }
        }
    }

    /// <summary><see cref="ShutDown"/>, then waits until every key being processed is <see cref="Done"/>.</summary>
    public Task ShutDownAsync(CancellationToken cancellationToken)
    {
        ShutDown();
        return _drained.Task.WaitAsync(cancellationToken);
    }

    public void Dispose() => ShutDown();

    private void AddLocked(TKey key)
    {
        if (_shuttingDown || !_dirty.Add(key))
        {
            return;
        }
        if (!_processing.Contains(key))
        {
            Enqueue(key);
        }
    }

    /// <summary>Hands the key to a waiting getter, or queues it. Under the lock; the key is in <see cref="_dirty"/>.</summary>
    private void Enqueue(TKey key)
    {
        if (_getters.First is { } getter)
        {
            _getters.RemoveFirst();
            _dirty.Remove(key);
            _processing.Add(key);
            getter.Value.TrySetResult((false, key));
            return;
        }
        _queue.Enqueue(key);
    }

    private void Fire(Delayed entry)
    {
        lock (_gate)
        {
            if (!_waiting.TryGetValue(entry.Key, out var current) || !ReferenceEquals(current, entry))
            {
                return;
            }
            _waiting.Remove(entry.Key);
            entry.Timer?.Dispose();
            AddLocked(entry.Key);
        }
    }

    private sealed class Delayed(TKey key, DateTimeOffset due)
    {
        public TKey Key { get; } = key;

        public DateTimeOffset Due { get; } = due;

        public ITimer? Timer { get; set; }
    }
}

/// <summary>Per-key retry delays of a <see cref="WorkQueue{TKey}"/>: client-go's default is 5 ms doubling to 1000 s; ours caps at 5 min.</summary>
internal sealed class WorkQueueOptions
{
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(5);

    public void Validate()
    {
        if (BaseDelay <= TimeSpan.Zero || MaxDelay < BaseDelay)
        {
            throw PodMigrateException.InvalidArgument($"work queue delays need 0 < BaseDelay ({BaseDelay}) <= MaxDelay ({MaxDelay})");
        }
    }
}
