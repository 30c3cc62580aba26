using System.Text.Json;
using Google.Protobuf;

namespace PodMigrate.Agent.Containers;

/// <summary>A container on this node as the agent operates on it: its containerd record and its Kubernetes identity.</summary>
internal sealed record SourceContainer(
    string Id,
    string ContainerdNamespace,
    string Image,
    string Runtime,
    string Snapshotter,
    string SnapshotKey,
    DateTimeOffset Created,
    ByteString SpecJson,
    IReadOnlyDictionary<string, string> Labels)
{
    public string PodNamespace => Label(KubeLabels.PodNamespace);

    public string PodName => Label(KubeLabels.PodName);

    public string PodUid => Label(KubeLabels.PodUid);

    /// <summary>The Kubernetes container name, or the containerd id for a container that no kubelet made.</summary>
    public string ContainerName => Labels.TryGetValue(KubeLabels.ContainerName, out var name) ? name : Id;

    public bool IsPodContainer => Labels.ContainsKey(KubeLabels.PodName);

    /// <summary>"default/counter/counter" for people and logs; the id for bare containers.</summary>
    public string DisplayName => IsPodContainer ? $"{PodNamespace}/{PodName}/{ContainerName}" : Id;

    /// <summary>The pod sandbox a CRI container belongs to (from its spec's CRI annotations), or "".</summary>
    public string SandboxId
    {
        get
        {
            if (SpecJson.IsEmpty)
            {
                return "";
            }
            using var spec = JsonDocument.Parse(SpecJson.Memory);
            return spec.RootElement.TryGetProperty("annotations", out var annotations)
                   && annotations.TryGetProperty(KubeLabels.SandboxIdAnnotation, out var id)
                ? id.GetString() ?? ""
                : "";
        }
    }

    private string Label(string key) => Labels.TryGetValue(key, out var value) ? value : "";
}

/// <summary>The labels a kubelet (through CRI) puts on containers, and CRI's own.</summary>
internal static class KubeLabels
{
    public const string PodName = "io.kubernetes.pod.name";
    public const string PodNamespace = "io.kubernetes.pod.namespace";
    public const string PodUid = "io.kubernetes.pod.uid";
    public const string ContainerName = "io.kubernetes.container.name";

    /// <summary>containerd's CRI marks its records "sandbox" or "container".</summary>
    public const string CriKind = "io.cri-containerd.kind";

    /// <summary>The spec annotation in which containerd's CRI names a container's sandbox.</summary>
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";
}
