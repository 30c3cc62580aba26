using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace PodMigrate.Controller.Telemetry;

/// <summary>The controller's meter ("PodMigrate.Controller"): migrations by outcome, how long they took and the downtime they caused.</summary>
internal static class ControllerMetrics
{
    public const string MeterName = "PodMigrate.Controller";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Finished = Meter.CreateCounter<long>("podmigrate_migrations_total", description: "PodMigrations that reached a terminal phase, by phase, mode and reason");

    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("podmigrate_migration_duration_seconds", "s", "From the start of the precheck to the terminal phase");

    private static readonly Histogram<double> Downtime = Meter.CreateHistogram<double>("podmigrate_migration_downtime_seconds", "s", "From the source's freeze to the clone Running and Ready (Migrate) or the source resumed (Clone)");

    public static void Record(string phase, string mode, string reason, TimeSpan? duration, TimeSpan? downtime)
    {
        var tags = new TagList { { "phase", phase }, { "mode", mode }, { "reason", reason } };
        Finished.Add(1, tags);
        if (duration is { } d)
        {
            Duration.Record(d.TotalSeconds, new TagList { { "phase", phase }, { "mode", mode } });
        }
        if (downtime is { } down)
        {
            Downtime.Record(down.TotalSeconds, new TagList { { "mode", mode } });
        }
    }
}
