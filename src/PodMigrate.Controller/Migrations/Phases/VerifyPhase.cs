using k8s.Models;
using PodMigrate.Controller.Runtime;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Restoring (clone created) → Verifying → Committed: the clone must become Running and Ready within the restore
/// timeout, then stay so through the verification window; otherwise the migration rolls back.
/// </summary>
internal sealed class VerifyPhase(CacheFirstReader<V1Pod> pods, RuntimeClassRestore runtimeClass, CheckpointPublication publication, MigrationJournal journal, ControllerOptions options) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var status = migration.Status!;
        // Polled every PollInterval through the window: the informer's copy serves (a change to the clone requeues the
        // migration at once through the pod handler). A rollback is decided on the server's copy only.
        var clone = await pods.GetAsync(migration.Namespace, status.ClonePod!, cancellationToken);
        var (health, decision) = Decide(clone, status, settings);
        if (decision.Action is not (VerifyAction.Wait or VerifyAction.FirstReady or VerifyAction.Verified))
        {
            clone = await pods.GetFreshAsync(migration.Namespace, status.ClonePod!, cancellationToken);
            (health, decision) = Decide(clone, status, settings);
        }
        if (clone is null)
        {
            return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CloneFailed", $"clone pod {migration.Namespace}/{status.ClonePod} disappeared", cancellationToken));
        }
        switch (decision.Action)
        {
            case VerifyAction.RollBackCloneFailed:
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CloneFailed", health.Message, cancellationToken));
            case VerifyAction.FirstReady:
                status.CloneReady(decision.ReadyAt);
                if (!settings.ThroughCheckpointImage && status.RestoredAt is null && await runtimeClass.RestoredAtAsync(status, cancellationToken) is { } restored)
                {
                    status.RestoredAt = restored.At;
                    status.LazyPages = restored.LazyPages;
                    if (restored.Restore is { } criu)
                    {
                        status.SetTiming("restore.criu", criu);
                    }
                }
                status.EnterVerifying(settings.IsClone, settings.VerifyWindow, journal.Time.GetUtcNow());
                return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
            case VerifyAction.Verified when status.AwaitsPublication:
                // Restored from a sealed checkpoint: the source is let go only once its archive is durable on the share.
                var published = await publication.CheckAsync(migration, status, cancellationToken);
                switch (published.State)
                {
                    case PublicationState.Pending:
                        return PhaseOutcome.Wait(options.PollInterval);
                    case PublicationState.Failed:
                        return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CheckpointFailed",
                            $"checkpoint {status.CheckpointId} was sealed and restored on {status.TargetNode}, but could not be made durable on the share: {published.Failure}", cancellationToken));
                }
                if (published.Result is { } result)
                {
                    status.RecordCheckpoint(result, journal.Time.GetUtcNow());
                }
                status.PublishedAt ??= journal.Time.GetUtcNow();
                return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
            // Without the runtime's record, what the clone pod asked for (a lazy restore whose pages nobody confirms rolls back).
            case VerifyAction.Verified when (status.LazyPages ?? (!settings.ThroughCheckpointImage && settings.LazyPages)) && status.PagesFilledAt is null:
                // Part of the clone's memory may still exist only in the target's staging (and the archive): the source
                // is not let go before the lazy-pages daemon served every page.
                var pages = await runtimeClass.PagesAsync(status, cancellationToken);
                if (pages is { Failure: { } failure })
                {
                    return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "LazyPagesFailed", failure, cancellationToken));
                }
                if (pages?.FilledAt is { } filledAt)
                {
                    status.PagesFilledAt = filledAt;
                    if (pages.Fill is { } fill)
                    {
                        status.SetTiming("restore.pages", fill);
                    }
                    return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
                }
                if (journal.Time.GetUtcNow() - (status.RestoredAt ?? status.CloneReadyAt!.Value) > options.RestoreTimeout)
                {
                    return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "LazyPagesFailed",
                        $"the target's lazy-pages daemon had not served every page of the clone {KubeDuration.Format(options.RestoreTimeout)} after it was restored", cancellationToken));
                }
                return PhaseOutcome.Wait(options.PollInterval);
            case VerifyAction.Verified:
                status.Verified(settings.IsClone, settings.VerifyWindow, journal.Time.GetUtcNow());
                return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
            case VerifyAction.RollBackLostReadiness:
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CloneNotReady", $"clone lost readiness during the verification window: {health.Message}", cancellationToken));
            case VerifyAction.RollBackNeverReady:
                return PhaseOutcome.Continue(await journal.BeginRollbackAsync(migration, "CloneNotReady",
                    $"{health.Message} {KubeDuration.Format(options.RestoreTimeout)} after it was created", cancellationToken));
            default:
                return PhaseOutcome.Wait(decision.Delay);
        }
    }

    private (CloneHealth Health, VerifyDecision Decision) Decide(V1Pod? clone, PodMigrationStatus status, MigrationSettings settings)
    {
        if (clone is null)
        {
            return (default, new VerifyDecision(VerifyAction.RollBackCloneFailed));
        }
        var health = CloneHealth.Of(clone, status.ContainerName!);
        return (health, Decide(health, status, settings.VerifyWindow, options.RestoreTimeout, options.PollInterval, journal.Time.GetUtcNow()));
    }

    /// <summary>What the clone's health means at <paramref name="now"/>, given what the status recorded (pure).</summary>
    internal static VerifyDecision Decide(CloneHealth health, PodMigrationStatus status, TimeSpan verifyWindow, TimeSpan restoreTimeout, TimeSpan pollInterval, DateTimeOffset now)
    {
        switch (health.State)
        {
            case CloneHealthState.Failed:
                return new(VerifyAction.RollBackCloneFailed);
            case CloneHealthState.Ready when status.CloneReadyAt is null:
                // Ready since the kubelet says (never later than now): the restore took until then.
                return new(VerifyAction.FirstReady, ReadyAt: health.ReadySince is { } since && since <= now ? since : now);
            case CloneHealthState.Ready:
                var remaining = status.CloneReadyAt!.Value + verifyWindow - now;
                return remaining > TimeSpan.Zero
                    ? new(VerifyAction.Wait, Delay: remaining < pollInterval ? remaining : pollInterval)
                    : new(VerifyAction.Verified);
            default:
                if (status.CloneReadyAt is not null)
                {
                    return new(VerifyAction.RollBackLostReadiness);
                }
                return now - status.CloneCreatedAt!.Value > restoreTimeout ? new(VerifyAction.RollBackNeverReady) : new(VerifyAction.Wait, Delay: pollInterval);
        }
    }
}

internal enum VerifyAction
{
    /// <summary>Look again after <see cref="VerifyDecision.Delay"/>: the clone is starting, or in its window.</summary>
    Wait,
    /// <summary>Ready for the first time, at <see cref="VerifyDecision.ReadyAt"/>: the window starts.</summary>
    FirstReady,
    /// <summary>Stayed Ready through the window: commit.</summary>
    Verified,
    RollBackCloneFailed,
    RollBackLostReadiness,
    /// <summary>Not Ready within the restore timeout after it was created.</summary>
    RollBackNeverReady,
}

internal readonly record struct VerifyDecision(VerifyAction Action, TimeSpan Delay = default, DateTimeOffset ReadyAt = default);
