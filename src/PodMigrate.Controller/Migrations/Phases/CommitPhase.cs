using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>Forward only: the clone is verified. Migrate ends the source and hands its owners to the clone; Clone resumes it.</summary>
internal sealed class CommitPhase(
    IKubernetesApi api, CacheFirstReader<V1Pod> pods, IAgentDirectory agents, RuntimeClassRestore runtimeClass, SourceRelease release, MigrationJournal journal, MigrationEvents events,
    ILogger logger) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var status = migration.Status!;
        var sourceAgent = await agents.GetAsync(status.SourceNode!, cancellationToken);
        var now = journal.Time.GetUtcNow();
        if (settings.IsClone)
        {
            await release.ReleaseSourceAsync(sourceAgent, migration, status, resume: true, cancellationToken);
            status.SourceResumed(now);
        }
        else
        {
            // The cached copy serves: the delete below is guarded by the source's uid, the adoption copies its owners.
            var source = await pods.GetAsync(migration.Namespace, migration.Spec.PodName, cancellationToken);
            await release.ReleaseSourceAsync(sourceAgent, migration, status, resume: false, cancellationToken);
            if (source is not null && source.Metadata.Uid == status.SourcePodUid)
            {
                await DeleteIgnoringNotFoundAsync(migration.Namespace, source.Metadata.Name!, source.Metadata.Uid, cancellationToken);
                if (source.Metadata.OwnerReferences is { Count: > 0 })
                {
                    var adoption = new V1Patch(ClonePods.AdoptionPatch(source), V1Patch.PatchType.MergePatch);
                    await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.PatchNamespacedPodAsync(adoption, status.ClonePod, migration.Namespace, cancellationToken: t),
                        $"patch pod {migration.Namespace}/{status.ClonePod}", cancellationToken);
                }
            }
        }
        // The runtime consumed it; whatever is left of the staging goes (best effort: the agent also expires it).
        await runtimeClass.ReleaseAsync(status, cancellationToken);
        if (!settings.RetainCheckpoint)
        {
            await release.DeleteCheckpointAsync(status, cancellationToken);
        }
        status.Succeed(settings.PodName, settings.IsClone, now);
        migration = await journal.WriteAsync(migration, cancellationToken);
        await events.NormalAsync(migration, settings.IsClone ? "Cloned" : "Migrated", status.Message!, cancellationToken);
        ControllerLog.Succeeded(logger, migration.Namespace, migration.Name, status.Downtime ?? "-");
        MigrationJournal.RecordOutcome(migration, settings.IsClone, "Succeeded");
        return PhaseOutcome.Done;
    }

    private async Task DeleteIgnoringNotFoundAsync(string ns, string name, string? uid, CancellationToken cancellationToken)
    {
        try
        {
            await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.DeleteNamespacedPodAsync(name, ns, new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = uid } },
                cancellationToken: t), $"delete pod {ns}/{name}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }
}
