using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Checkpointing → Restoring: the source agent checkpoints the source and leaves it stopped (held), under an operation
/// id written first, so a requeued or restarted controller attaches to it instead of checkpointing twice. On the
/// RuntimeClass path the target is asked to prepare beside it, following the archive as it is written, and the source
/// agent seals the checkpoint before it is durable: once the target has verified and prepared the sealed checkpoint, the
/// migration goes on while the source agent makes it durable (the commit waits for that, <see cref="VerifyPhase"/>).
/// </summary>
internal sealed class CheckpointPhase(
    IAgentDirectory agents, RuntimeClassRestore runtimeClass, MigrationJournal journal, OperationWakeups? wakeups, ControllerOptions options, ILogger logger) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var time = journal.Time;
        var status = migration.Status!;
        var agent = await agents.GetAsync(status.SourceNode!, cancellationToken);
        if (status.CheckpointOperation is not null || !await CheckpointExistsAsync(agent, status.CheckpointId!, cancellationToken))
        {
            // The target prepares beside the checkpoint, following the archive as it is written (RuntimeClass path):
            // its own operation, started under status.RestoreOperation, which the restore step attaches to.
            var prepareAlongside = !settings.ThroughCheckpointImage && status.PreparedAt is null;
            var startFollow = prepareAlongside && status.RestoreOperation is null;
            if (status.FrozenAt is null || status.CheckpointOperation is null || (prepareAlongside && status.RestoreOperation is null))
            {
                // Written first: from here on a rollback must resume the source and release what the target may have
                // staged, and whoever reconciles next attaches to these operations by their ids instead of starting
                // a second checkpoint.
                status.FrozenAt ??= time.GetUtcNow();
                status.CheckpointOperation ??= AgentOperationCalls.NewId(status.CheckpointId!, "checkpoint");
                if (prepareAlongside)
                {
                    status.PreparedOn ??= status.TargetNode;
                    status.RestoreOperation ??= AgentOperationCalls.NewId(status.CheckpointId!, RuntimeClassRestore.FollowStep);
                }
                migration = await journal.WriteAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            if (startFollow)
            {
                // Once, best effort and bounded: an unresponsive target must not hold up the checkpoint (the restore step
                // attaches to the id, or prepares afresh when the follower did not get there).
                await runtimeClass.FollowAsync(migration, status, MigrationSteps.RemainingUntilDeadline(status, settings, time.GetUtcNow()), cancellationToken);
            }
            var request = new CheckpointRequest
            {
                Container = MigrationSteps.SourceSelector(migration, status),
                Disposition = SourceDisposition.SourceLeaveStopped,
                Codec = settings.Codec,
                CheckpointId = status.CheckpointId,
                Pin = settings.RetainCheckpoint,
                Labels = { ["podmigrate.io/migration"] = $"{migration.Namespace}.{migration.Name}", ["podmigrate.io/target-node"] = status.TargetNode! },
                Timeout = Duration.FromTimeSpan(MigrationSteps.RemainingUntilDeadline(status, settings, time.GetUtcNow())),
                // The target follows: it may restore from the sealed archive while the source agent makes it durable.
                SealEarly = prepareAlongside,
            };
            var operation = await AgentOperationCalls.StartOrAttachAsync(
                agent,
                new StartOperationRequest { OperationId = status.CheckpointOperation, Checkpoint = request },
                async token => new Operation { Checkpoint = await agent.CheckpointToEndAsync(request, null, token) },
                cancellationToken);
            if (!operation.Done && prepareAlongside && operation.Progress is { Sealed: true } sealedProgress)
            {
                if (await GoOnSealedAsync(migration, status, settings, sealedProgress, cancellationToken) is { } sealedMigration)
                {
                    return PhaseOutcome.Continue(sealedMigration);
                }
            }
            if (!operation.Done)
            {
                // The agent owns it: this worker goes on with other migrations and looks again when it ends (or at the poll).
                status.Message = $"checkpointing pod {settings.PodName} on node {status.SourceNode}: {ProgressText(operation)}";
                _ = wakeups?.WakeWhenDone(agent, status.CheckpointOperation!, Runtime.ObjectKey.Of(migration.Metadata));
                if (prepareAlongside && status.RestoreOperation is { } follow)
                {
                    // The follower ends just after the seal: the moment the migration may go on (GoOnSealedAsync).
                    _ = wakeups?.WakeWhenDone(await agents.GetAsync(status.TargetNode!, cancellationToken), follow, Runtime.ObjectKey.Of(migration.Metadata));
                }
                return PhaseOutcome.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e && e.Kind != ErrorKind.AlreadyExists)
            {
                // (AlreadyExists: an earlier attempt, e.g. by a controller that died waiting for the answer, published it.)
                if (e.Kind == ErrorKind.FailedPrecondition && await SealedAndAbandonedAsync(agent, migration, status, cancellationToken))
                {
                    // Nothing but the rollback's Resume ends that hold: the operation that sealed it is gone.
                    return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CheckpointFailed",
                        $"the agent on node {status.SourceNode} stopped after it sealed checkpoint {status.CheckpointId}, before the archive was durable; nothing was committed", cancellationToken));
                }
                var retry = OnFailure(e.Kind) switch
                {
                    CheckpointFailure.Retry => true,
                    CheckpointFailure.RetryIfSourceBusy => await SourceBusyAsync(agent, migration, status, cancellationToken),
                    _ => false,
                };
                if (retry)
                {
                    // This attempt is over (the agent resumed the source unless it published): the next one gets a new
                    // operation, after looking whether the checkpoint is on the share.
                    ControllerLog.SourceBusy(logger, e.Message);
                    status.CheckpointOperation = null;
                    if (prepareAlongside && status.RestoreOperation is { } follow)
                    {
                        // Its archive will not be published under this attempt: the next attempt follows afresh.
                        await runtimeClass.CancelAsync(status, follow, cancellationToken);
                        status.RestoreOperation = null;
                    }
                    await journal.WriteAsync(migration, cancellationToken);
                    return PhaseOutcome.Wait(options.PollInterval);
                }
                // The agent resumes the source when a checkpoint fails (unless it sealed it); the rollback makes sure of it.
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CheckpointFailed",
                    $"checkpoint of pod {settings.PodName} on node {status.SourceNode} failed: {e.Message}", cancellationToken));
            }
            if (operation.Checkpoint is { } result)
            {
                status.RecordCheckpoint(result, time.GetUtcNow());
                ControllerLog.Checkpointed(logger, status.CheckpointId!, status.SourceNode!, result.Wall.ToTimeSpan().TotalMilliseconds, result.Checkpoint.ArchiveBytes);
                if (prepareAlongside)
                {
                    // Published: the follower seals its staging now or soon (the restore step attaches to it if it still runs).
                    RecordFollowed(status, await runtimeClass.FollowAsync(migration, status,
                        MigrationSteps.RemainingUntilDeadline(status, settings, time.GetUtcNow()), cancellationToken), time.GetUtcNow());
                }
            }
        }
        status.Checkpointed(time.GetUtcNow());
        return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
    }

    /// <summary>
    /// The checkpoint is sealed (not yet durable): once the target's follower has verified and prepared it, the migration
    /// goes on to the restore (returned, written); until then null, with a wakeup for the follower's end. A follower that
    /// failed is left to the end of the checkpoint, which prepares the published one as usual.
    /// </summary>
    private async Task<PodMigration?> GoOnSealedAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, Progress sealedProgress, CancellationToken cancellationToken)
    {
        var time = journal.Time;
        var follow = await runtimeClass.FollowAsync(migration, status, MigrationSteps.RemainingUntilDeadline(status, settings, time.GetUtcNow()), cancellationToken);
        if (follow is null)
        {
            return null;
        }
        if (!follow.Done)
        {
            _ = wakeups?.WakeWhenDone(await agents.GetAsync(status.TargetNode!, cancellationToken), status.RestoreOperation!, Runtime.ObjectKey.Of(migration.Metadata));
            return null;
        }
        if (follow.Prepared is null || follow.Error is not null)
        {
            return null;
        }
        var now = time.GetUtcNow();
        RecordFollowed(status, follow, now);
        status.RecordSealed(sealedProgress.FrozenAt?.ToDateTimeOffset(), now);
        ControllerLog.CheckpointSealed(logger, status.CheckpointId!, status.SourceNode!, status.TargetNode!);
        status.Checkpointed(now);
        return await journal.WriteAsync(migration, cancellationToken);
    }

    /// <summary>
    /// How a failed checkpoint attempt goes on: the agent or the call went away (a new attempt), the source was busy
    /// with another operation (a new attempt, if the source agent confirms it), or it failed (rollback).
    /// </summary>
    internal static CheckpointFailure OnFailure(ErrorKind kind) => kind switch
    {
        ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.Cancelled => CheckpointFailure.Retry,
        ErrorKind.FailedPrecondition => CheckpointFailure.RetryIfSourceBusy,
        _ => CheckpointFailure.RollBack,
    };

    /// <summary>
    /// A prepare that followed the checkpoint: when it is done, its phases (the restore step then need not prepare); when it
    /// failed, a fresh ordinary prepare of the published checkpoint in the restore step; when it still runs, the restore
    /// step attaches to it.
    /// </summary>
    internal static void RecordFollowed(PodMigrationStatus status, Operation? following, DateTimeOffset now)
    {
        if (following is not { Done: true })
        {
            return;
        }
        if (following.Prepared is { } prepared && following.Error is null)
        {
            status.RecordPrepared(prepared, now);
            return;
        }
        status.RestoreOperation = null;
    }

    private static string ProgressText(Operation operation)
        => operation.Progress is { } p ? (p.Message.Length > 0 ? p.Message : p.Phase.ToString()) + (p.BytesDone > 0 ? $" ({p.BytesDone} bytes)" : "") : "started";

    private static async Task<bool> CheckpointExistsAsync(AgentClient agent, string checkpointId, CancellationToken cancellationToken)
    {
        try
        {
            await agent.InspectCheckpointAsync(checkpointId, verify: false, cancellationToken);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// The source is held by this migration's own checkpoint, sealed and never made durable, and a new attempt was refused
    /// for it: the agent that sealed it restarted (it keeps such a hold, a clone may run from it).
    /// </summary>
    private static async Task<bool> SealedAndAbandonedAsync(AgentClient agent, PodMigration migration, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        var hold = await agent.GetHoldAsync(MigrationSteps.SourceSelector(migration, status), cancellationToken);
        return hold.CheckpointId == status.CheckpointId && hold.State == HoldState.HoldSealed;
    }

    private static async Task<bool> SourceBusyAsync(AgentClient agent, PodMigration migration, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        var list = await agent.ListContainersAsync(new ListContainersRequest { PodNamespace = migration.Namespace, PodName = migration.Spec.PodName }, cancellationToken);
        return list.Containers.Any(c => c.ContainerName == status.ContainerName && c.BusyWith.Length > 0);
    }
}

internal enum CheckpointFailure
{
    Retry,
    RetryIfSourceBusy,
    RollBack,
}
