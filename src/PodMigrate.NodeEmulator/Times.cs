namespace PodMigrate.NodeEmulator;

/// <summary>Times as the API writes them: metav1.Time has whole seconds, CRI counts nanoseconds since the epoch.</summary>
internal static class Times
{
    public static DateTimeOffset Truncate(DateTimeOffset time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerSecond), time.Offset);

    public static DateTimeOffset? FromUnixNanos(long nanos) => nanos <= 0 ? null : Truncate(DateTimeOffset.UnixEpoch.AddTicks(nanos / 100));
}
