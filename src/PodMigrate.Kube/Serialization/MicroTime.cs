namespace PodMigrate.Kube.Serialization;

/// <summary>metav1.MicroTime (a Lease's acquireTime and renewTime) as the package's models carry it.</summary>
public static class MicroTime
{
    /// <summary>
    /// <paramref name="time"/> as a MicroTime: whole microseconds, and never a whole second. The API server parses MicroTime
    /// with exactly six fractional digits, and the package writes a time with no sub-second part without any
    /// (2026-12-07T09:00:00Z: a 400); one microsecond later is the same renewal.
    /// </summary>
    public static DateTime Of(DateTimeOffset time)
    {
        var ticks = time.UtcTicks;
        ticks -= ticks % 10;
        if (ticks % TimeSpan.TicksPerSecond == 0)
        {
            ticks += 10;
        }
        return new DateTime(ticks, DateTimeKind.Utc);
    }
}
