using System.Text.Json;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// The clone pod's writes to the API server: a new clone made from the source pod (<see cref="ClonePods.Build"/>), or a
/// user's clone-of pod filled and bound. Refusals (<see cref="MigrationRefusedException"/>) roll the migration back.
/// </summary>
internal sealed class ClonePodWriter(IKubernetesApi api, CacheFirstReader<Pod> pods)
{
    public async Task CreateAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var source = await GetSourcePodAsync(migration, cancellationToken);
        var clone = ClonePods.Build(source, migration, status.ClonePod!, status.TargetNode!, status.ContainerName!, CloneRestoreOf(status, settings, source));
        try
        {
            await api.CreateAsync(KubeResources.Pods, migration.Namespace, clone, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // A GET: the pod that is in the way may be too new for the cache.
            var existing = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
            if (existing.Metadata.Annotations?.GetValueOrDefault(MigrationAnnotations.Migration) != migration.Name)
            {
                throw new MigrationRefusedException("CloneNameTaken", $"pod {existing.Key} exists and is not this migration's clone");
            }
        }
    }

    /// <summary>
    /// clone-of: the user's pod (gated, so no kubelet ran it) gets the checkpoint image, loses the gate, and is bound
    /// to the target node. A scheduler that binds it first (nodeSelector points at the target) is fine.
    /// </summary>
    public async Task FillAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        // The cached copy serves: the patch below is guarded by its resourceVersion (a stale copy is a 409, retried).
        if (await pods.GetAsync(migration.Namespace, status.ClonePod!, cancellationToken) is not { } pod)
        {
            throw new MigrationRefusedException("ClonePodGone", $"clone-of pod {migration.Namespace}/{status.ClonePod} was deleted");
        }
        if (pod.Spec.NodeName is { Length: > 0 } bound)
        {
            if (bound != status.TargetNode)
            {
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {pod.Key} is bound to {bound}, not {status.TargetNode}");
            }
            return;
        }
        var nodeName = status.TargetNode!;
        // The user's pod, not ours: a merge patch of what we change, guarded by the version read, rather than a replace.
        var before = JsonSerializer.SerializeToNode(pod, KubeClientJsonContext.Default.Pod)!.AsObject();
        // The clone-of pod's container becomes the source's (its image), restored from the checkpoint.
        var source = settings.ThroughCheckpointImage ? null : await GetSourcePodAsync(migration, cancellationToken);
        ClonePods.Fill(pod, nodeName, status.ContainerName!, CloneRestoreOf(status, settings, source));
        pod.Spec.NodeName = null; // bound through the binding subresource below, as a scheduler does
        (pod.Metadata.Annotations ??= [])[MigrationAnnotations.CheckpointId] = status.CheckpointId!;
        pod.Metadata.Annotations[MigrationAnnotations.Migration] = migration.Name;
        var after = JsonSerializer.SerializeToNode(pod, KubeClientJsonContext.Default.Pod)!.AsObject();
        await api.PatchAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, PatchType.MergePatch,
            MergePatch.Guarded(before, after, pod.Metadata.ResourceVersion), status: false, cancellationToken);
        try
        {
            await api.BindAsync(migration.Namespace, status.ClonePod!, nodeName, cancellationToken);
        }
        catch (PodMigrateException e) when (e.IsConflict())
        {
            // A GET: the conflict says the cache's copy is behind; where the pod was bound decides.
            var now = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
            if (now.Spec.NodeName != nodeName)
            {
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {now.Key} was bound to {now.Spec.NodeName}, not {nodeName}");
            }
        }
    }

    /// <summary>How the clone restores: the checkpoint image, or the RuntimeClass with the source container's image.</summary>
    private static CloneRestore CloneRestoreOf(PodMigrationStatus status, MigrationSettings settings, Pod? source)
        => settings.ThroughCheckpointImage
            ? new CloneRestore(status.CheckpointId!, CheckpointImage: status.CheckpointImage!)
            : new CloneRestore(status.CheckpointId!, BaseImage: status.SourceImage ?? source?.Spec.Containers.Find(c => c.Name == status.ContainerName)?.Image, LazyPages: settings.LazyPages);

    private async Task<Pod> GetSourcePodAsync(PodMigration migration, CancellationToken cancellationToken)
        => await pods.GetAsync(migration.Namespace, migration.Spec.PodName, cancellationToken)
           ?? throw new MigrationRefusedException("SourceNotFound", $"source pod {migration.Namespace}/{migration.Spec.PodName} disappeared during the migration");
}
