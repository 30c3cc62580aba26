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

    private static readonly Gauge<double> GuardLevel = Meter.CreateGauge<double>("podmigrate_oom_guard_node_memory_bytes", "By", "The OOM guard's view of each node: the working set it forecasts from");

    private static readonly Gauge<double> GuardCapacity = Meter.CreateGauge<double>("podmigrate_oom_guard_node_capacity_bytes", "By", "The node memory the OOM guard forecasts against (the node cgroup's limit, or the host's, less the guard's reserve)");

    private static readonly Gauge<double> GuardGrowth = Meter.CreateGauge<double>("podmigrate_oom_guard_node_growth_bytes_per_second", description: "The fitted growth rate of a node's memory (0: not growing, within the noise)");

    private static readonly Gauge<double> GuardTimeToExhaustion = Meter.CreateGauge<double>("podmigrate_oom_guard_node_time_to_exhaustion_seconds", "s", "The forecast time until a node's memory runs out (-1: not growing)");

    private static readonly Gauge<double> GuardMoveEstimate = Meter.CreateGauge<double>("podmigrate_oom_guard_move_estimate_seconds", "s", "The estimated time to move an opted-in pod (precheck and checkpoint), before the margin");

    private static readonly Counter<long> GuardDecisions = Meter.CreateCounter<long>("podmigrate_oom_guard_decisions_total", description: "The OOM guard's decisions: migrate, cannot_move_in_time, no_target, near_own_limit");

    private static readonly Histogram<double> GuardLead = Meter.CreateHistogram<double>("podmigrate_oom_guard_lead_seconds", "s", "The forecast time to exhaustion when the guard started a migration");

    private static readonly Counter<long> WebhookDecisions = Meter.CreateCounter<long>("podmigrate_eviction_webhook_decisions_total", description: "The eviction webhook's answers: allowed, denied_migrating, denied_migration_failed, started_migration, budget_refused (let through for the API server's budget check, or refused for the live migrations under the budget)");

    public static void EvictionWebhookDecision(string decision) => WebhookDecisions.Add(1, new TagList { { "decision", decision } });

    public static void OomGuardForecast(string node, double level, long capacity, double bytesPerSecond, TimeSpan? timeToExhaustion)
    {
        var tags = new TagList { { "node", node } };
        GuardLevel.Record(level, tags);
        GuardCapacity.Record(capacity, tags);
        GuardGrowth.Record(bytesPerSecond, tags);
        GuardTimeToExhaustion.Record(timeToExhaustion?.TotalSeconds ?? -1, tags);
    }

    public static void OomGuardEstimate(string pod, TimeSpan estimate) => GuardMoveEstimate.Record(estimate.TotalSeconds, new TagList { { "pod", pod } });

    public static void OomGuardDecision(string decision) => GuardDecisions.Add(1, new TagList { { "decision", decision } });

    public static void OomGuardLead(TimeSpan forecast, TimeSpan estimate)
        => GuardLead.Record(forecast.TotalSeconds, new TagList { { "estimate_bucket", estimate.TotalSeconds < 10 ? "under_10s" : estimate.TotalSeconds < 60 ? "under_1m" : "over_1m" } });

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
