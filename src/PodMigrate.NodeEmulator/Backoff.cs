namespace PodMigrate.NodeEmulator;

/// <summary>Times as the API writes them: metav1.Time has whole seconds, CRI counts nanoseconds since the epoch.</summary>
internal static class Times
{
    public static DateTimeOffset Truncate(DateTimeOffset time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerSecond), time.Offset);

    public static DateTimeOffset? FromUnixNanos(long nanos) => nanos <= 0 ? null : Truncate(DateTimeOffset.UnixEpoch.AddTicks(nanos / 100));
}

/// <summary>
/// kubelet's flowcontrol.Backoff, per key (a container of a pod, an image): the first failure retries at once, each
/// failure within the window doubles the wait up to a maximum; an entry untouched for twice the maximum starts over.
/// Only the pod worker that owns a key touches it.
/// </summary>
internal sealed class Backoff(TimeSpan initial, TimeSpan max, TimeProvider time)
{
    private readonly Dictionary<string, (TimeSpan Delay, DateTimeOffset LastUpdate)> _entries = new(StringComparer.Ordinal);

    public static TimeSpan Double(TimeSpan delay, TimeSpan max) => delay * 2 > max ? max : delay * 2;

    /// <summary>The current delay of <paramref name="key"/> (zero when it has none).</summary>
    public TimeSpan Get(string key) => _entries.TryGetValue(key, out var entry) ? entry.Delay : TimeSpan.Zero;

    /// <summary>Whether a retry after a failure at <paramref name="eventTime"/> must still wait.</summary>
    public bool IsInBackOffSince(string key, DateTimeOffset eventTime)
    {
        if (!_entries.TryGetValue(key, out var entry) || HasExpired(eventTime, entry.LastUpdate))
        {
            return false;
        }
        return time.GetUtcNow() - eventTime < entry.Delay;
    }

    /// <summary>Whether the last recorded failure of <paramref name="key"/> is more recent than its delay.</summary>
    public bool IsInBackOffSinceUpdate(string key)
        => _entries.TryGetValue(key, out var entry) && time.GetUtcNow() - entry.LastUpdate < entry.Delay;

    /// <summary>Records a failure at <paramref name="eventTime"/>: the next one waits longer.</summary>
    public void Next(string key, DateTimeOffset eventTime)
    {
        if (!_entries.TryGetValue(key, out var entry) || HasExpired(eventTime, entry.LastUpdate))
        {
            _entries[key] = (initial, eventTime);
            return;
        }
        _entries[key] = (Double(entry.Delay, max), eventTime);
    }

    public void Reset(string key) => _entries.Remove(key);

    private bool HasExpired(DateTimeOffset eventTime, DateTimeOffset lastUpdate) => eventTime - lastUpdate > max * 2;
}
