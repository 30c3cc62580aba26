namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>An earlier move: how much memory it carried and how long it took until the memory was captured.</summary>
internal readonly record struct MoveObservation(long Bytes, TimeSpan Duration);

/// <summary>
/// How long moving a pod of a given memory size takes until the race with an OOM is over: the precheck and the
/// checkpoint (the workload is frozen when the checkpoint starts and stops growing; the frozen source keeps its memory
/// until the clone is verified, which no longer grows the node). From earlier migrations (PodMigration statuses'
/// phase timings and the memory the guard recorded on them), scaled to the size at hand and taking the slowest; without
/// any, a conservative default. Pure.
/// </summary>
internal static class MoveTimeEstimate
{
    public static TimeSpan Estimate(long bytes, IReadOnlyList<MoveObservation> history, OomGuardSettings settings)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(settings);
        var usable = history.Where(h => h.Bytes > 0 && h.Duration > TimeSpan.Zero).TakeLast(settings.MoveHistory).ToList();
        if (usable.Count == 0)
        {
            return settings.DefaultMoveFixed + TimeSpan.FromSeconds((double)bytes / settings.DefaultMoveBytesPerSecond);
        }
        // A larger pod takes proportionally longer than an earlier one; a smaller one at most as long (fixed costs).
        var slowest = usable.Max(h => bytes > h.Bytes ? h.Duration.TotalSeconds * bytes / h.Bytes : h.Duration.TotalSeconds);
        return TimeSpan.FromSeconds(Math.Max(slowest, settings.MinimumMove.TotalSeconds));
    }
}
