namespace PodMigrate.Core.Retry;

/// <summary>
/// The solution's one backoff: delays that double from an initial value up to a cap, with optional random stretch so
/// that many clients do not retry in step. The static helpers are the doubling every retry loop uses; an instance is one
/// retry sequence (a watch, a list); <see cref="KeyedBackoff"/> keeps one per key with kubelet's expiry window.
/// </summary>
public sealed class ExponentialBackoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly double _jitter;
    private int _failures;

    /// <param name="jitter">Each delay is stretched by a random factor in [1, 1 + jitter); 0 makes delays exact.</param>
    public ExponentialBackoff(TimeSpan initial, TimeSpan max, double jitter = 0)
    {
        if (initial <= TimeSpan.Zero || max < initial)
        {
            throw new ArgumentOutOfRangeException(nameof(initial), $"the backoff needs 0 < initial ({initial}) <= max ({max})");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(jitter);
        _initial = initial;
        _max = max;
        _jitter = jitter;
    }

    public int Failures => _failures;

    /// <summary>The delay before the next attempt after one more failure.</summary>
    public TimeSpan Next()
    {
        var delay = Delay(_initial, _max, _failures);
        _failures = _failures == int.MaxValue ? _failures : _failures + 1;
        if (_jitter > 0)
        {
            delay = TimeSpan.FromTicks(Math.Min(_max.Ticks, (long)(delay.Ticks * (1 + (Random.Shared.NextDouble() * _jitter)))));
        }
        return delay;
    }

    public void Reset() => _failures = 0;

    /// <summary><paramref name="initial"/> × 2^<paramref name="exponent"/>, capped at <paramref name="max"/> (without overflowing).</summary>
    public static TimeSpan Delay(TimeSpan initial, TimeSpan max, int exponent)
    {
        var ticks = initial.Ticks * Math.Pow(2, Math.Min(exponent, 62));
        return ticks >= max.Ticks ? max : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>The delay after <paramref name="delay"/>: twice it, capped at <paramref name="max"/>.</summary>
    public static TimeSpan Doubled(TimeSpan delay, TimeSpan max) => delay * 2 > max ? max : delay * 2;
}

/// <summary>
/// kubelet's flowcontrol.Backoff, per key (a container of a pod, an image): the first failure retries at once, each
/// failure within the window doubles the wait (<see cref="ExponentialBackoff.Doubled"/>) up to a maximum; an entry
/// untouched for twice the maximum starts over. Time comes from the <see cref="TimeProvider"/>. Not thread-safe: only
/// the owner of a key touches it.
/// </summary>
public sealed class KeyedBackoff(TimeSpan initial, TimeSpan max, TimeProvider time)
{
    private readonly Dictionary<string, (TimeSpan Delay, DateTimeOffset LastUpdate)> _entries = new(StringComparer.Ordinal);

    /// <summary>The current delay of <paramref name="key"/> (zero when it has none).</summary>
    public TimeSpan Get(string key) => _entries.TryGetValue(key, out var entry) ? entry.Delay : TimeSpan.Zero;

    /// <summary>Whether a retry after a failure at <paramref name="eventTime"/> must still wait.</summary>
    public bool IsInBackOffSince(string key, DateTimeOffset eventTime) => IsInBackOffSince(key, eventTime, time.GetUtcNow());

    /// <summary>Whether a retry at <paramref name="now"/> after a failure at <paramref name="eventTime"/> must still wait (reads only: for pure decisions).</summary>
    public bool IsInBackOffSince(string key, DateTimeOffset eventTime, DateTimeOffset now)
    {
        if (!_entries.TryGetValue(key, out var entry) || HasExpired(eventTime, entry.LastUpdate))
        {
            return false;
        }
        return now - eventTime < entry.Delay;
    }

    /// <summary>Whether the last recorded failure of <paramref name="key"/> is more recent than its delay.</summary>
    public bool IsInBackOffSinceUpdate(string key) => IsInBackOffSinceUpdate(key, time.GetUtcNow());

    /// <summary>Whether, at <paramref name="now"/>, the last recorded failure of <paramref name="key"/> is more recent than its delay (reads only).</summary>
    public bool IsInBackOffSinceUpdate(string key, DateTimeOffset now)
        => _entries.TryGetValue(key, out var entry) && now - entry.LastUpdate < entry.Delay;

    /// <summary>Records a failure at <paramref name="eventTime"/>: the next one waits longer.</summary>
    public void Next(string key, DateTimeOffset eventTime)
    {
        if (!_entries.TryGetValue(key, out var entry) || HasExpired(eventTime, entry.LastUpdate))
        {
            _entries[key] = (initial, eventTime);
            return;
        }
        _entries[key] = (ExponentialBackoff.Doubled(entry.Delay, max), eventTime);
    }

    public void Reset(string key) => _entries.Remove(key);

    private bool HasExpired(DateTimeOffset eventTime, DateTimeOffset lastUpdate) => eventTime - lastUpdate > max * 2;
}
