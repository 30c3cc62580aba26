using System.Text.Json;
using System.Text.Json.Nodes;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

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
    public static string Serialize(PodStatus status) => JsonSerializer.Serialize(status, KubeClientJsonContext.Default.PodStatus);

    public static async Task<Pod> WriteAsync(IKubernetesApi api, Pod pod, PodStatus status, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToNode(status, KubeClientJsonContext.Default.PodStatus)!.AsObject();
        foreach (var field in OwnedFields)
        {
            body.TryAdd(field, null);
        }
        var patch = new JsonObject { ["status"] = body };
        // The uid precondition: a pod recreated under the same name is another pod, not this one's to report on.
        patch["metadata"] = new JsonObject { ["uid"] = pod.Metadata.Uid };
        return await api.PatchAsync(KubeResources.Pods, pod.Metadata.Namespace, pod.Metadata.Name!, PatchType.MergePatch, patch.ToJsonString(), status: true, cancellationToken);
    }
}
