using k8s;
using k8s.Models;
using PodMigrate.Controller.Agents;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Finishes a rollback begun (<see cref="MigrationJournal.BeginRollbackAsync"/>): clone gone first (and confirmed gone),
/// then the source resumed: never two live copies. Ends RolledBack.
/// </summary>
internal sealed class RollbackPhase(
    IKubernetesApi api, IAgentDirectory agents, RuntimeClassRestore runtimeClass, CheckpointPublication publication, SourceRelease release, MigrationJournal journal, MigrationEvents events,
    ControllerOptions options) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var status = migration.Status!;
        if (status.ClonePod is not null && await CloneStillPresentAsync(migration, settings, status, cancellationToken))
        {
            return PhaseOutcome.Wait(options.PollInterval);
        }
        // The clone is gone: nothing can consume the prepared staging any more.
        await runtimeClass.ReleaseAsync(status, cancellationToken);
        if (status.FrozenAt is not null)
        {
            var agent = await agents.GetAsync(status.SourceNode!, cancellationToken);
            if (status.CheckpointOperation is { } checkpointOperation)
            {
                // A checkpoint still running is not needed any more: before its publication the agent resumes the source
                // itself; after it, the hold is resumed below.
                await AgentOperationCalls.CancelAsync(agent, checkpointOperation, cancellationToken);
                // It takes a moment to end, and the agent refuses a Resume as busy until it has (a sealed checkpoint's
                // hold does not say "checkpointing" meanwhile: the restore may go on from it, a Resume may not).
                if ((await publication.CheckAsync(migration, status, cancellationToken)).State == PublicationState.Pending)
                {
                    return PhaseOutcome.Wait(options.PollInterval);
                }
            }
            // A checkpoint still running there (e.g. between its commit and its end) would take its hold after a Resume
            // refused as busy: wait for it, then resume what it holds.
            var (verdict, _) = await SourceHoldCheck.CheckAsync(agent, MigrationSteps.SourceSelector(migration, status), status.CheckpointId!, cancellationToken);
            if (verdict == HoldVerdict.Wait)
            {
                return PhaseOutcome.Wait(options.PollInterval);
            }
            await release.ReleaseSourceAsync(agent, migration, status, resume: true, cancellationToken);
        }
        if (!settings.RetainCheckpoint && status.CheckpointId is not null && status.FrozenAt is not null)
        {
            await release.DeleteCheckpointAsync(status, cancellationToken);
        }
        // BeginRollbackAsync put the cause in the RollingBack condition; it survives a restart with the rest of the status.
        status.RolledBack(settings.PodName, journal.Time.GetUtcNow());
        migration = await journal.WriteAsync(migration, cancellationToken);
        await events.WarningAsync(migration, "RolledBack", status.Message!, cancellationToken);
        await events.PodAsync(migration, settings.PodName, status.SourcePodUid, warning: true, "MigrationRolledBack", status.Message!, cancellationToken);
        MigrationJournal.RecordOutcome(migration, settings.IsClone, migration.Status!.RollbackReason!);
        return PhaseOutcome.Done;
    }

    /// <summary>Deletes this migration's clone and reports whether it is still there (the kubelet has not confirmed it stopped).</summary>
    private async Task<bool> CloneStillPresentAsync(PodMigration migration, MigrationSettings settings, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        // A GET, not the informer's copy: the source is resumed once this says the clone is gone, and a cache that has not
        // yet delivered the clone's creation would say so too early (two live copies).
        V1Pod clone;
        try
        {
            clone = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedPodAsync(status.ClonePod, migration.Namespace, cancellationToken: t),
                $"get pod {migration.Namespace}/{status.ClonePod}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
        var ours = clone.Metadata.Annotations.ValueAt(MigrationAnnotations.Migration) == migration.Name;
        if (!ours || (settings.ClonePodName is not null && string.IsNullOrEmpty(clone.Spec.NodeName)))
        {
            // Never created by us, or a clone-of pod that was never filled: nothing runs there.
            return false;
        }
        if (clone.Metadata.DeletionTimestamp is null)
        {
            var body = new V1DeleteOptions
            {
                GracePeriodSeconds = options.CloneDeleteGraceSeconds,
                Preconditions = new V1Preconditions { Uid = clone.Metadata.Uid },
            };
            await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.DeleteNamespacedPodAsync(status.ClonePod, migration.Namespace, body, cancellationToken: t),
                $"delete pod {migration.Namespace}/{status.ClonePod}", cancellationToken);
        }
        return true;
    }
}
