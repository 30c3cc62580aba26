using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>
/// Writes a pod's status through the status subresource as a merge patch: the fields kubelet owns are all sent (an
/// absent one as null, so that a stale value is cleared); fields others own (qosClass, nominatedNodeName…) are left alone.
/// </summary>
internal static class PodStatusWriter
{
    private static readonly string[] OwnedFields =
        ["phase", "message", "reason", "hostIP", "hostIPs", "podIP", "podIPs", "startTime", "conditions", "containerStatuses"];

    /// <summary>The status as JSON text, to compare one status with the last one written.</summary>
    public static string Serialize(V1PodStatus status) => JsonSerializer.Serialize(status, PackageJson.TypeInfo<V1PodStatus>());

    public static async Task<V1Pod> WriteAsync(IKubernetesApi api, V1Pod pod, V1PodStatus status, CancellationToken cancellationToken)
    {
        var body = PackageJson.ToNode(status);
        foreach (var field in OwnedFields)
        {
            body.TryAdd(field, null);
        }
        var patch = new JsonObject { ["status"] = body };
        // The uid precondition: a pod recreated under the same name is another pod, not this one's to report on.
        patch["metadata"] = new JsonObject { ["uid"] = pod.Metadata.Uid };
        var (ns, name) = (pod.Metadata.NamespaceProperty, pod.Metadata.Name);
        var merge = new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch);
        return await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.PatchNamespacedPodStatusAsync(merge, name, ns, cancellationToken: t),
            $"patch status of pod {ns}/{name}", cancellationToken);
    }
}
