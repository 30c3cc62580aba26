namespace PodMigrate.Controller.Triggers;

/// <summary>The labels through which a pod opts into live migration and a PodMigration records what started it.</summary>
public static class TriggerLabels
{
    public const string LiveMigrate = "podmigrate.io/live-migrate";
    public const string Trigger = "podmigrate.io/trigger";
    public const string OomGuard = "oom-guard";
    public const string Eviction = "eviction";

    public static bool OptedIn(IDictionary<string, string>? labels) =>
        labels is not null && labels.TryGetValue(LiveMigrate, out var value) && value == "true";
}
