using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// The target side of a RuntimeClass restore, as the migration sees it: the target agent prepares the verified checkpoint
/// for the clone pod and container before the clone exists; once the clone runs, the runtime's record says when the
/// restored process executed again (the honest end of the downtime); the staging is released after success and on
/// rollback. <see cref="MigrationPrecheck"/> has already made sure the target has the handler.
/// </summary>
internal sealed partial class RuntimeClassRestore(IAgentDirectory agents, ILogger logger)
{
    /// <summary>
    /// Starts (or attaches to) the target agent's prepare of the checkpoint for the clone, under
    /// <see cref="PodMigrationStatus.RestoreOperation"/>, and returns the operation as it stands (a failure is its error,
    /// not thrown; one reaching the agent is an error too: the source is frozen, so the caller rolls back rather than
    /// waits). <see cref="PodMigrationStatus.PreparedOn"/> must already be written, so that a rollback releases whatever
    /// this leaves.
    /// </summary>
    /// <param name="follow">
    /// Start while the source still writes the checkpoint: the target follows the archive on the share and seals the
    /// prepared checkpoint only once the published manifest has verified it whole.
    /// </param>
    public async Task<Operation> PrepareAsync(PodMigration migration, PodMigrationStatus status, TimeSpan timeout, CancellationToken cancellationToken, bool follow = false)
    {
        var request = PrepareRequest(migration, status, timeout, follow);
        Operation operation;
        try
        {
            var agent = await agents.GetAsync(status.TargetNode!, cancellationToken);
            operation = await AgentOperationCalls.StartOrAttachAsync(
                agent,
                new StartOperationRequest { OperationId = status.RestoreOperation, PrepareRestore = request },
                async token => new Operation { Prepared = await agent.PrepareRestoreAsync(request, token) },
                cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
        {
            return new Operation { Done = true, State = OperationState.OperationFailed, Error = new OperationError { Code = (int)ErrorMapping.ToStatusCode(e.Kind), Message = e.Message } };
        }
        if (operation.Prepared is { } prepared)
        {
            CheckpointPrepared(logger, status.CheckpointId!, status.TargetNode!, prepared.Path, prepared.Wall.ToTimeSpan().TotalMilliseconds);
        }
        return operation;
    }

    /// <summary>
    /// When the target's runtime recorded the restored process running again, and how long its restore took; null when
    /// it has no record (yet).
    /// </summary>
    public async Task<(DateTimeOffset At, TimeSpan? Restore, bool LazyPages)?> RestoredAtAsync(PodMigrationStatus status, CancellationToken cancellationToken)
    {
        try
        {
            var agent = await agents.GetAsync(status.TargetNode!, cancellationToken);
            var restored = await agent.GetRestoredAsync(status.CheckpointId!, cancellationToken);
            return restored.RestoredAt is { } at ? (at.ToDateTimeOffset(), restored.Restore?.ToTimeSpan(), restored.LazyPages) : null;
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.DataLoss)
        {
            NoRestoreRecord(logger, status.CheckpointId!, status.TargetNode!, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Lazy pages: whether the target's lazy-pages daemon has served every page of the restored clone (Filled, with when
    /// and how long), failed (the runtime killed the clone), or still serves them / cannot be asked right now (null).
    /// </summary>
    public async Task<LazyPagesOutcome?> PagesAsync(PodMigrationStatus status, CancellationToken cancellationToken)
    {
        try
        {
            var agent = await agents.GetAsync(status.TargetNode!, cancellationToken);
            var restored = await agent.GetRestoredAsync(status.CheckpointId!, cancellationToken);
            if (restored.PagesFilledAt is { } filled)
            {
                return new LazyPagesOutcome(filled.ToDateTimeOffset(), restored.PagesFill?.ToTimeSpan(), null);
            }
            return restored.PagesFailure is { Length: > 0 } failure ? new LazyPagesOutcome(null, restored.PagesFill?.ToTimeSpan(), failure) : null;
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.DataLoss)
        {
            NoRestoreRecord(logger, status.CheckpointId!, status.TargetNode!, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Removes the prepared staging on the node it was prepared on. Best effort: a target that cannot be reached is not
    /// a reason to keep a source frozen; its agent removes expired staging by itself.
    /// </summary>
    public async Task ReleaseAsync(PodMigrationStatus status, CancellationToken cancellationToken)
    {
        if (status.PreparedOn is not { } node || status.CheckpointId is not { } id)
        {
            return;
        }
        try
        {
            var agent = await agents.GetAsync(node, cancellationToken);
            var released = await agent.ReleasePreparedAsync(id, cancellationToken);
            PreparedReleased(logger, id, node, released.Removed);
        }
        catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
        {
            ReleaseFailed(logger, id, node, e.Message);
        }
    }

    /// <summary>The step name in the operation id of a prepare that follows the checkpoint as it is written.</summary>
    public const string FollowStep = "follow";

    /// <summary>Whether the operation id is one of a prepare that followed the checkpoint (<see cref="FollowStep"/>).</summary>
    public static bool IsFollow(string? operationId) => operationId?.Contains($"-{FollowStep}-", StringComparison.Ordinal) == true;

    /// <summary>
    /// Starts (or attaches to) the target's prepare with follow under <see cref="PodMigrationStatus.RestoreOperation"/>,
    /// beside the checkpoint, so that the target's fetch, verification and decompression overlap the source's write.
    /// Returns the operation as it stands, or null when the target cannot follow (an older agent without operations, or
    /// unreachable): the restore step then prepares the published checkpoint as usual, so this only ever saves time.
    /// </summary>
    public async Task<Operation?> FollowAsync(PodMigration migration, PodMigrationStatus status, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(FollowCallTimeout);
        try
        {
            var agent = await agents.GetAsync(status.TargetNode!, bounded.Token);
            return await agent.StartOperationAsync(new StartOperationRequest
            {
                OperationId = status.RestoreOperation,
                PrepareRestore = PrepareRequest(migration, status, timeout, follow: true),
            }, bounded.Token);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            FollowFailed(logger, status.CheckpointId!, status.TargetNode!, e.Message);
            return null;
        }
    }

    /// <summary>The target's prepare of this migration's checkpoint for its clone pod and container.</summary>
    private static PrepareRestoreRequest PrepareRequest(PodMigration migration, PodMigrationStatus status, TimeSpan timeout, bool follow) => new()
    {
        CheckpointId = status.CheckpointId,
        PodNamespace = migration.Namespace,
        PodName = status.ClonePod,
        Container = status.ContainerName,
        Timeout = Duration.FromTimeSpan(timeout),
        Follow = follow,
        Image = PrePulledImage(status),
    };

    /// <summary>
    /// The image the target pulls while it prepares, so that the kubelet finds the clone's image present: only one pinned
    /// by digest (<see cref="PodMigrationStatus.SourceImage"/>), never a tag, which could have moved since the source pulled it.
    /// </summary>
    internal static string PrePulledImage(PodMigrationStatus status)
        => ClonePods.IsPinnedReference(status.SourceImage) ? status.SourceImage! : "";

    /// <summary>How long asking the target to follow (or reading how far it got) may take: it only ever saves time.</summary>
    private static readonly TimeSpan FollowCallTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Cancels an operation on the target (best effort).</summary>
    public async Task CancelAsync(PodMigrationStatus status, string operationId, CancellationToken cancellationToken)
    {
        try
        {
            await AgentOperationCalls.CancelAsync(await agents.GetAsync(status.TargetNode!, cancellationToken), operationId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
        {
            FollowFailed(logger, status.CheckpointId!, status.TargetNode!, e.Message);
        }
    }

    /// <summary>The end of a lazy restore's page fill: <see cref="FilledAt"/> set, or <see cref="Failure"/>.</summary>
    public sealed record LazyPagesOutcome(DateTimeOffset? FilledAt, TimeSpan? Fill, string? Failure);

    [LoggerMessage(4500, LogLevel.Information, "Checkpoint {CheckpointId} prepared on node {Node} in {Path} ({Milliseconds} ms)")]
    private static partial void CheckpointPrepared(ILogger logger, string checkpointId, string node, string path, double milliseconds);

    [LoggerMessage(4501, LogLevel.Information, "Prepared checkpoint {CheckpointId} released on node {Node} (removed: {Removed})")]
    private static partial void PreparedReleased(ILogger logger, string checkpointId, string node, bool removed);

    [LoggerMessage(4502, LogLevel.Warning, "Prepared checkpoint {CheckpointId} could not be released on node {Node} (its agent removes it when it expires): {Message}")]
    private static partial void ReleaseFailed(ILogger logger, string checkpointId, string node, string message);

    [LoggerMessage(4503, LogLevel.Warning, "No restore record of checkpoint {CheckpointId} on node {Node}; downtime measured to the clone's readiness: {Message}")]
    private static partial void NoRestoreRecord(ILogger logger, string checkpointId, string node, string message);

    [LoggerMessage(4504, LogLevel.Information, "Checkpoint {CheckpointId} could not be prepared on node {Node} while it was written; it is prepared once published: {Message}")]
    private static partial void FollowFailed(ILogger logger, string checkpointId, string node, string message);
}
