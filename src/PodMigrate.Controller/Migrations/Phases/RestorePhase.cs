using Google.Protobuf.WellKnownTypes;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Restoring, until the clone exists: the source must still be held by the checkpoint (<see cref="SourceHoldCheck"/>);
/// the target prepares it (RuntimeClass) or imports it as a checkpoint image, under an operation id written first; then
/// the clone pod is created (or the clone-of pod filled). A failure on the way rolls back.
/// </summary>
internal sealed class RestorePhase(
    IAgentDirectory agents, RuntimeClassRestore runtimeClass, ClonePodWriter clones, MigrationJournal journal, MigrationEvents events, OperationWakeups? wakeups, ControllerOptions options) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var time = journal.Time;
        var status = migration.Status!;
        if (!status.CloneCreatedAt.HasValue)
        {
            // A checkpoint on the share proves the source was once in that state; only its hold proves it still is.
            var sourceAgent = await agents.GetAsync(status.SourceNode!, cancellationToken);
            var (verdict, hold) = await SourceHoldCheck.CheckAsync(sourceAgent, MigrationSteps.SourceSelector(migration, status), status.CheckpointId!, cancellationToken);
            if (verdict == HoldVerdict.Wait)
            {
                return PhaseOutcome.Wait(options.PollInterval);
            }
            if (verdict == HoldVerdict.NotHeld)
            {
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "SourceNotHeld",
                    $"pod {settings.PodName} on node {status.SourceNode} is {hold}, not held by checkpoint {status.CheckpointId}: restoring it could bring back an older state than the source reached", cancellationToken));
            }
        }
        if (!settings.ThroughCheckpointImage && status.PreparedAt is null)
        {
            if (status.PreparedOn is null || status.RestoreOperation is null)
            {
                // Written first: from here on a rollback releases what the target may have staged, and a requeue attaches.
                status.PreparedOn = status.TargetNode;
                status.RestoreOperation = AgentOperationCalls.NewId(status.CheckpointId!, "prepare");
                migration = await journal.WriteAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            var operation = await runtimeClass.PrepareAsync(migration, status, MigrationSteps.RemainingUntilDeadline(status, settings, time.GetUtcNow()), cancellationToken);
            if (!operation.Done)
            {
                _ = wakeups?.WakeWhenDone(await agents.GetAsync(status.TargetNode!, cancellationToken), status.RestoreOperation!, Runtime.ObjectKey.Of(migration.Metadata));
                return PhaseOutcome.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e)
            {
                if (e.Kind == ErrorKind.Unavailable)
                {
                    // The target's agent is restarting (or its node briefly unreachable): the source stays held by its
                    // checkpoint and the same operation id starts again once the agent answers; an unsealed staging of
                    // the dead agent is removed at its start, a sealed one is attached to.
                    var now = time.GetUtcNow();
                    var (since, changed) = MarkUnreachable(status, e.Message, now);
                    if (now - since < options.TargetAgentGrace)
                    {
                        if (changed)
                        {
                            await journal.WriteAsync(migration, cancellationToken);
                        }
                        return PhaseOutcome.Wait(options.PollInterval);
                    }
                    return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "TargetUnavailable",
                        $"the agent on node {status.TargetNode} stayed unreachable for {KubeDuration.Format(now - since)} while preparing checkpoint {status.CheckpointId}: {e.Message}", cancellationToken));
                }
                if (e.Kind == ErrorKind.Cancelled || RuntimeClassRestore.IsFollow(status.RestoreOperation))
                {
                    // The target agent stopped under it, or it followed the archive and did not get there (the archive
                    // is published now): an ordinary prepare.
                    status.RestoreOperation = null;
                    await journal.WriteAsync(migration, cancellationToken);
                    return PhaseOutcome.Wait(options.PollInterval);
                }
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "RestoreFailed",
                    $"node {status.TargetNode} could not prepare checkpoint {status.CheckpointId}: {e.Message}", cancellationToken));
            }
            if (status.Condition(TargetReachable) is { Status: "False" })
            {
                status.SetCondition(TargetReachable, "True", "AgentAnswered", $"the agent on node {status.TargetNode} answers again", time.GetUtcNow());
            }
            status.RecordPrepared(operation.Prepared, time.GetUtcNow());
            migration = await journal.WriteAsync(migration, cancellationToken);
            status = migration.Status!;
        }
        else if (settings.ThroughCheckpointImage && status.CheckpointImage is null)
        {
            if (status.RestoreOperation is null)
            {
                status.RestoreOperation = AgentOperationCalls.NewId(status.CheckpointId!, "import");
                migration = await journal.WriteAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            var operation = await ImportAsync(migration, status, settings, cancellationToken);
            if (!operation.Done)
            {
                return PhaseOutcome.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e)
            {
                // The source is frozen while we wait: a target that cannot take the checkpoint now is rolled back
                // at once rather than retried.
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "RestoreFailed",
                    $"node {status.TargetNode} could not import checkpoint {status.CheckpointId}: {e.Message}", cancellationToken));
            }
            status.CheckpointImage = operation.Restore.CheckpointImage;
            if (operation.Restore.Wall is { } importWall)
            {
                status.SetTiming("import", importWall.ToTimeSpan());
            }
            migration = await journal.WriteAsync(migration, cancellationToken);
            status = migration.Status!;
        }

        try
        {
            if (settings.ClonePodName is not null)
            {
                await clones.FillAsync(migration, status, settings, cancellationToken);
            }
            else
            {
                await clones.CreateAsync(migration, status, settings, cancellationToken);
            }
        }
        catch (MigrationRefusedException e)
        {
            return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, e.Reason, e.Message, cancellationToken));
        }
        status.CloneCreated(time.GetUtcNow());
        migration = await journal.WriteAsync(migration, cancellationToken);
        await events.NormalAsync(migration, "Restoring", $"Clone pod {status.ClonePod} created on {status.TargetNode} from checkpoint {status.CheckpointId}", cancellationToken);
        await events.PodAsync(migration, status.ClonePod!, null, warning: false, "Restoring", $"Restored from checkpoint {status.CheckpointId} of pod {settings.PodName} on {status.SourceNode}", cancellationToken);
        return PhaseOutcome.Continue(migration);
    }

    /// <summary>The target agent imports the checkpoint as a checkpoint image (started or attached to); a failure is the operation's error.</summary>
    private async Task<Operation> ImportAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            var agent = await agents.GetAsync(status.TargetNode!, cancellationToken);
            var request = new RestoreRequest
            {
                CheckpointId = status.CheckpointId,
                Method = RestoreMethod.RestoreCriImage,
                ImageOnly = true,
                Pod = new PodTarget { Namespace = migration.Namespace, Name = status.ClonePod, Container = status.ContainerName },
                Timeout = Duration.FromTimeSpan(MigrationSteps.RemainingUntilDeadline(status, settings, journal.Time.GetUtcNow())),
            };
            return await AgentOperationCalls.StartOrAttachAsync(
                agent,
                new StartOperationRequest { OperationId = status.RestoreOperation, Restore = request },
                async token => new Operation { Restore = await agent.RestoreToEndAsync(request, null, token) },
                cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
        {
            return new Operation { Done = true, Error = new OperationError { Code = (int)ErrorMapping.ToStatusCode(e.Kind), Message = e.Message } };
        }
    }

    private const string TargetReachable = "TargetReachable";

    /// <summary>Marks the target unreachable; returns since when it is (the condition's transition time) and whether that is news.</summary>
    private static (DateTimeOffset Since, bool Changed) MarkUnreachable(PodMigrationStatus status, string message, DateTimeOffset now)
    {
        var changed = status.Condition(TargetReachable) is not { Status: "False" };
        status.SetCondition(TargetReachable, "False", "AgentUnavailable", message, now);
        return (status.Condition(TargetReachable)!.LastTransitionTime ?? now, changed);
    }
}
