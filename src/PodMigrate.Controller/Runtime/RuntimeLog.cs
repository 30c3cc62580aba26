using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Runtime;

/// <summary>The controller runtime's log events (ids 4000–4499): informers 40xx, reconcile 41xx, leader election 42xx, events 43xx, host 44xx.</summary>
internal static partial class RuntimeLog
{
    [LoggerMessage(4000, LogLevel.Debug, "Informer {Informer}: listed {Count} objects at resourceVersion {ResourceVersion}")]
    public static partial void Listed(ILogger logger, string informer, int count, string resourceVersion);

    [LoggerMessage(4001, LogLevel.Information, "Informer {Informer}: synced ({Count} objects)")]
    public static partial void Synced(ILogger logger, string informer, int count);

    [LoggerMessage(4002, LogLevel.Debug, "Informer {Informer}: watch from {ResourceVersion} ended after {EventCount} events; watching again")]
    public static partial void WatchEnded(ILogger logger, string informer, string resourceVersion, int eventCount);

    [LoggerMessage(4003, LogLevel.Information, "Informer {Informer}: resourceVersion {ResourceVersion} has expired (410 Gone); listing again")]
    public static partial void WatchExpired(ILogger logger, string informer, string resourceVersion);

    [LoggerMessage(4004, LogLevel.Warning, "Informer {Informer}: {Doing} failed ({Kind}): {Message}; retrying in {DelayMs} ms")]
    public static partial void ListWatchFailed(ILogger logger, string informer, string doing, ErrorKind kind, string message, long delayMs);

    [LoggerMessage(4005, LogLevel.Error, "Informer {Informer}: a {Event} handler for {Key} threw; the other handlers still run")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string informer, string @event, string key);

    [LoggerMessage(4006, LogLevel.Information, "Informer {Informer}: re-list delivered {Added} added, {Updated} updated, {Deleted} deleted")]
    public static partial void Relisted(ILogger logger, string informer, int added, int updated, int deleted);

    [LoggerMessage(4100, LogLevel.Warning, "{Controller}: reconcile of {Key} failed ({Kind}): {Message}; retry {Attempt} in {DelayMs} ms")]
    public static partial void ReconcileFailed(ILogger logger, string controller, string key, ErrorKind kind, string message, int attempt, long delayMs);

    [LoggerMessage(4101, LogLevel.Error, "{Controller}: reconcile of {Key} threw; retry {Attempt} in {DelayMs} ms")]
    public static partial void ReconcileThrew(ILogger logger, Exception exception, string controller, string key, int attempt, long delayMs);

    [LoggerMessage(4102, LogLevel.Debug, "{Controller}: {Key} reconciled; again in {DelayMs} ms")]
    public static partial void ReconcileRequeued(ILogger logger, string controller, string key, long delayMs);

    [LoggerMessage(4103, LogLevel.Information, "{Controller}: {Workers} workers started")]
    public static partial void WorkersStarted(ILogger logger, string controller, int workers);

    [LoggerMessage(4104, LogLevel.Information, "{Controller}: workers stopped")]
    public static partial void WorkersStopped(ILogger logger, string controller);

    [LoggerMessage(4200, LogLevel.Information, "Leader election {Lease}: {Identity} is now the leader (transition {Transitions})")]
    public static partial void LeadershipAcquired(ILogger logger, string lease, string identity, int transitions);

    [LoggerMessage(4201, LogLevel.Warning, "Leader election {Lease}: {Identity} lost the leadership: {Reason}")]
    public static partial void LeadershipLost(ILogger logger, string lease, string identity, string reason);

    [LoggerMessage(4202, LogLevel.Information, "Leader election {Lease}: {Identity} released the lease")]
    public static partial void LeaseReleased(ILogger logger, string lease, string identity);

    [LoggerMessage(4203, LogLevel.Information, "Leader election {Lease}: the leader is {Holder}")]
    public static partial void LeaderObserved(ILogger logger, string lease, string holder);

    [LoggerMessage(4204, LogLevel.Debug, "Leader election {Lease}: {Identity} could not acquire or renew ({Kind}): {Message}")]
    public static partial void AttemptFailed(ILogger logger, string lease, string identity, ErrorKind kind, string message);

    [LoggerMessage(4205, LogLevel.Warning, "Leader election {Lease}: {Identity} could not release the lease; a successor waits for it to expire")]
    public static partial void ReleaseFailed(ILogger logger, Exception exception, string lease, string identity);

    [LoggerMessage(4206, LogLevel.Warning, "Leader election {Lease}: {Identity} waits for the work of its last term to stop before it campaigns again")]
    public static partial void WaitingForLeadingWork(ILogger logger, string lease, string identity);

    [LoggerMessage(4300, LogLevel.Warning, "Event {Reason} on {Object} dropped: {Message}")]
    public static partial void EventDropped(ILogger logger, Exception exception, string reason, string @object, string message);

    [LoggerMessage(4301, LogLevel.Debug, "Event {Reason} on {Object} recorded as {EventName} (count {Count})")]
    public static partial void EventRecorded(ILogger logger, string reason, string @object, string eventName, int count);

    [LoggerMessage(4400, LogLevel.Information, "Controller host: informers synced ({Informers}); starting the controllers")]
    public static partial void HostSynced(ILogger logger, string informers);

    [LoggerMessage(4401, LogLevel.Error, "Controller host: informer {Informer} stopped on its own; stopping the controllers")]
    public static partial void InformerStopped(ILogger logger, string informer);

    [LoggerMessage(4402, LogLevel.Critical, "Controller loop failed; stopping the application")]
    public static partial void ControllerLoopFailed(ILogger logger, Exception exception);
}
