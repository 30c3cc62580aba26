using Microsoft.Extensions.Logging;

namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>The OOM guard's events: ids 4600-4649.</summary>
internal static partial class OomGuardLog
{
    [LoggerMessage(EventId = 4600, Level = LogLevel.Information, Message = "OOM guard running: samples every {Interval}, margin {Margin}x")]
    public static partial void Started(ILogger logger, TimeSpan interval, double margin);

    [LoggerMessage(EventId = 4601, Level = LogLevel.Warning, Message = "OOM guard: a round failed: {Reason}")]
    public static partial void TickFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 4602, Level = LogLevel.Warning, Message = "OOM guard: memory stream of node {Node} failed, again in {Delay}: {Reason}")]
    public static partial void WatchFailed(ILogger logger, string node, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 4610, Level = LogLevel.Information, Message = "OOM guard: moving {Pod} to {Target} (podmigration {Migration}): {Reason}")]
    public static partial void Migrating(ILogger logger, string pod, string target, string migration, string reason);

    [LoggerMessage(EventId = 4611, Level = LogLevel.Warning, Message = "OOM guard: {Pod}: {Reason}")]
    public static partial void CannotMoveInTime(ILogger logger, string pod, string reason);

    [LoggerMessage(EventId = 4612, Level = LogLevel.Warning, Message = "OOM guard: {Pod}: {Reason}")]
    public static partial void NoTarget(ILogger logger, string pod, string reason);

    [LoggerMessage(EventId = 4613, Level = LogLevel.Warning, Message = "OOM guard: {Pod}: {Reason}")]
    public static partial void NearOwnLimit(ILogger logger, string pod, string reason);

    [LoggerMessage(EventId = 4614, Level = LogLevel.Information, Message = "OOM guard: holding back on node {Node}: {Reason}")]
    public static partial void Settling(ILogger logger, string node, string reason);
}
