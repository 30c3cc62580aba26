using Microsoft.Extensions.Logging;

namespace PodMigrate.Controller.Telemetry;

/// <summary>The controller's log events, with stable ids (2xxx: migrations).</summary>
internal static partial class ControllerLog
{
    [LoggerMessage(2001, LogLevel.Information, "Checkpoint {CheckpointId} published on node {Node} in {Milliseconds:F0} ms ({Bytes} bytes)")]
    public static partial void Checkpointed(ILogger logger, string checkpointId, string node, double milliseconds, long bytes);

    [LoggerMessage(2010, LogLevel.Information, "Checkpoint {CheckpointId} sealed on node {Node} and prepared on node {Target}: restoring while it is made durable")]
    public static partial void CheckpointSealed(ILogger logger, string checkpointId, string node, string target);

    [LoggerMessage(2002, LogLevel.Information, "Source container is busy with an earlier operation; waiting: {Message}")]
    public static partial void SourceBusy(ILogger logger, string message);

    [LoggerMessage(2003, LogLevel.Information, "Source pod {Pod} on node {Node}: {State}")]
    public static partial void SourceReleased(ILogger logger, string pod, string node, string state);

    [LoggerMessage(2004, LogLevel.Information, "Source pod {Pod} on node {Node} was not held any more: {Message}")]
    public static partial void SourceNotHeld(ILogger logger, string pod, string node, string message);

    [LoggerMessage(2005, LogLevel.Warning, "PodMigration {Namespace}/{Name} rolling back ({Reason}): {Message}")]
    public static partial void RollingBack(ILogger logger, string @namespace, string name, string reason, string message);

    [LoggerMessage(2006, LogLevel.Warning, "PodMigration {Namespace}/{Name} refused ({Reason}): {Message}")]
    public static partial void Refused(ILogger logger, string @namespace, string name, string reason, string message);

    [LoggerMessage(2007, LogLevel.Information, "PodMigration {Namespace}/{Name} succeeded (downtime {Downtime})")]
    public static partial void Succeeded(ILogger logger, string @namespace, string name, string downtime);

    [LoggerMessage(2008, LogLevel.Warning, "Checkpoint {CheckpointId} could not be deleted through node {Node}: {Message}")]
    public static partial void CheckpointNotDeleted(ILogger logger, string checkpointId, string node, string message);

    [LoggerMessage(2009, LogLevel.Debug, "Watch of agent operation {OperationId} ended early ({Kind}: {Message}); its migration is polled")]
    public static partial void OperationWatchFailed(ILogger logger, string operationId, PodMigrate.Core.Errors.ErrorKind kind, string message);
}
