using k8s;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// clonePod on an unmodified cluster. A user (or a scheduler) creates a Pod with the annotation
/// <c>podmigrate.io/clone-of: &lt;source pod&gt;</c>, the scheduling gate <c>podmigrate.io/clone-of</c> (so no
/// scheduler or kubelet runs it yet) and a target node (annotation <c>podmigrate.io/target-node</c>, or
/// <c>spec.nodeSelector["kubernetes.io/hostname"]</c>). This reconciler turns it into a PodMigration in Clone mode
/// whose clone is that very pod: the migration reconciler checkpoints the source, has the target prepare it, fills the
/// pod as a clone pod (RuntimeClass and restore annotation; see <see cref="ClonePods.Fill"/>), lifts the gate and binds the pod to the target. The PodMigration is named
/// <c>clone-&lt;pod&gt;</c> and owned by the pod, so deleting the pod cleans it up.
/// </summary>
internal sealed class CloneOfReconciler(IKubernetesApi api)
{
    public const string HostnameLabel = "kubernetes.io/hostname";

    public static bool IsCloneOfRequest(V1Pod pod)
        => pod.Metadata.Annotations?.ContainsKey(MigrationAnnotations.CloneOf) == true
           && pod.Spec.SchedulingGates?.Any(g => g.Name == MigrationAnnotations.CloneGate) == true
           && string.IsNullOrEmpty(pod.Spec.NodeName)
           && pod.Metadata.DeletionTimestamp is null;

    public static string MigrationNameFor(string podName) => podName.Length > 247 ? $"clone-{podName[..247]}" : $"clone-{podName}";

    public async Task ReconcileAsync(string ns, string name, CancellationToken cancellationToken)
    {
        V1Pod pod;
        try
        {
            pod = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedPodAsync(name, ns, cancellationToken: t), $"get pod {ns}/{name}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return;
        }
        await ReconcileAsync(pod, cancellationToken);
    }

    /// <summary>
    /// Makes the PodMigration a clone-of pod asks for, from the pod as read (the informer's cache serves: a stale copy at
    /// worst makes a migration that already exists, which is AlreadyExists and ignored). The pod is not changed.
    /// </summary>
    public async Task ReconcileAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var ns = string.IsNullOrEmpty(pod.Metadata.NamespaceProperty) ? "default" : pod.Metadata.NamespaceProperty;
        var name = pod.Metadata.Name!;
        if (!IsCloneOfRequest(pod))
        {
            return;
        }
        var source = pod.Metadata.Annotations![MigrationAnnotations.CloneOf];
        var target = pod.Metadata.Annotations.ValueAt(MigrationAnnotations.TargetNode)
                     ?? pod.Spec.NodeSelector.ValueAt(HostnameLabel);
        var migration = new PodMigration
        {
            Metadata = new V1ObjectMeta
            {
                Name = MigrationNameFor(name),
                NamespaceProperty = ns,
                Labels = new Dictionary<string, string> { ["podmigrate.io/clone-pod"] = name },
                OwnerReferences =
                [
                    new V1OwnerReference { ApiVersion = "v1", Kind = "Pod", Name = name, Uid = pod.Metadata.Uid ?? "", BlockOwnerDeletion = false },
                ],
            },
            Spec = new PodMigrationSpec
            {
                PodName = source,
                TargetNode = target,
                Mode = MigrationMode.Clone,
                ClonePodName = name,
            },
        };
        try
        {
            await api.CreateAsync(PodMigration.Resource, ns, migration, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // Made on an earlier pass: the migration reconciler owns it from here.
        }
    }
}
