using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// The clone pod's writes to the API server: a new clone made from the source pod's JSON (<see cref="ClonePods.Build"/>),
/// or a user's clone-of pod filled (a merge patch) and bound. Refusals (<see cref="MigrationRefusedException"/>) roll the
/// migration back.
/// </summary>
internal sealed class ClonePodWriter(IKubernetesApi api, CacheFirstReader<V1Pod> pods)
{
    public async Task CreateAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        // The source as the server has it, as JSON: the clone is built from that, so that fields newer than the package's
        // models (which would drop them) reach the clone. Created as JSON for the same reason.
        var source = await GetSourcePodJsonAsync(migration, cancellationToken);
        var baseImage = settings.ThroughCheckpointImage ? null : ClonePods.ImageOf(PackageJson.FromNode<V1Pod>(source, "source pod"), status.ContainerName);
        var clone = ClonePods.Build(source, migration, status.ClonePod!, status.TargetNode!, status.ContainerName!, CloneRestoreOf(status, settings, baseImage));
        try
        {
            await api.CreateAsync(KubeResources.RawPods, migration.Namespace, clone, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // A GET: the pod that is in the way may be too new for the cache.
            var existing = await ReadPodAsync(migration.Namespace, status.ClonePod!, cancellationToken);
            if (existing.Metadata.Annotations.ValueAt(MigrationAnnotations.Migration) != migration.Name)
            {
                throw new MigrationRefusedException("CloneNameTaken", $"pod {existing.Key()} exists and is not this migration's clone");
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
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {pod.Key()} is bound to {bound}, not {status.TargetNode}");
            }
            return;
        }
        var nodeName = status.TargetNode!;
        // The user's pod, not ours: a merge patch of what we change, guarded by the version read, rather than a replace.
        // Fields the package's model lacks are in neither side, so the patch leaves them alone.
        var before = PackageJson.ToNode(pod);
        var after = before.DeepClone().AsObject();
        // The clone-of pod's container becomes the source's (its image), restored from the checkpoint.
        var baseImage = settings.ThroughCheckpointImage ? null : ClonePods.ImageOf(await GetSourcePodAsync(migration, cancellationToken), status.ContainerName);
        ClonePods.Fill(after, nodeName, status.ContainerName!, CloneRestoreOf(status, settings, baseImage));
        after["spec"]!.AsObject().Remove("nodeName"); // bound through the binding subresource below, as a scheduler does
        var annotations = after["metadata"]!["annotations"]!.AsObject();
        annotations[MigrationAnnotations.CheckpointId] = status.CheckpointId!;
        annotations[MigrationAnnotations.Migration] = migration.Name;
        var patch = new V1Patch(MergePatch.Guarded(before, after, pod.Metadata.ResourceVersion), V1Patch.PatchType.MergePatch);
        await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.PatchNamespacedPodAsync(patch, status.ClonePod, migration.Namespace, cancellationToken: t),
            $"patch pod {migration.Namespace}/{status.ClonePod}", cancellationToken);
        try
        {
            await api.BindAsync(migration.Namespace, status.ClonePod!, nodeName, cancellationToken);
        }
        catch (PodMigrateException e) when (e.IsConflict())
        {
            // A GET: the conflict says the cache's copy is behind; where the pod was bound decides.
            var now = await ReadPodAsync(migration.Namespace, status.ClonePod!, cancellationToken);
            if (now.Spec.NodeName != nodeName)
            {
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {now.Key()} was bound to {now.Spec.NodeName}, not {nodeName}");
            }
        }
    }

    /// <summary>How the clone restores: the checkpoint image, or the RuntimeClass with the source container's image.</summary>
    private static CloneRestore CloneRestoreOf(PodMigrationStatus status, MigrationSettings settings, string? baseImage)
        => settings.ThroughCheckpointImage
            ? new CloneRestore(status.CheckpointId!, CheckpointImage: status.CheckpointImage!)
            : new CloneRestore(status.CheckpointId!, BaseImage: status.SourceImage ?? baseImage, LazyPages: settings.LazyPages);

    private Task<V1Pod> ReadPodAsync(string ns, string name, CancellationToken cancellationToken)
        => KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedPodAsync(name, ns, cancellationToken: t), $"get pod {ns}/{name}", cancellationToken);

    private async Task<V1Pod> GetSourcePodAsync(PodMigration migration, CancellationToken cancellationToken)
        => await pods.GetAsync(migration.Namespace, migration.Spec.PodName, cancellationToken) ?? throw SourceGone(migration);

    private async Task<JsonObject> GetSourcePodJsonAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        try
        {
            return await api.GetAsync(KubeResources.RawPods, migration.Namespace, migration.Spec.PodName, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw SourceGone(migration);
        }
    }

    private static MigrationRefusedException SourceGone(PodMigration migration)
        => new("SourceNotFound", $"source pod {migration.Namespace}/{migration.Spec.PodName} disappeared during the migration");
}
