using System.Text.Json;
using Google.Protobuf;
using PodMigrate.Node.Cri;

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
    public string PodNamespace => Label(KubeletLabels.PodNamespace);

    public string PodName => Label(KubeletLabels.PodName);

    public string PodUid => Label(KubeletLabels.PodUid);

    /// <summary>The Kubernetes container name, or the containerd id for a container that no kubelet made.</summary>
    public string ContainerName => Labels.TryGetValue(KubeletLabels.ContainerName, out var name) ? name : Id;

    public bool IsPodContainer => Labels.ContainsKey(KubeletLabels.PodName);

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
                   && annotations.TryGetProperty(CriContainerdLabels.SandboxIdAnnotation, out var id)
                ? id.GetString() ?? ""
                : "";
        }
    }

    private string Label(string key) => Labels.TryGetValue(key, out var value) ? value : "";
}

/// <summary>What containerd's CRI plugin adds to kubelet's labels (<see cref="KubeletLabels"/>).</summary>
internal static class CriContainerdLabels
{
    /// <summary>containerd's CRI marks its records "sandbox" or "container".</summary>
    public const string Kind = "io.cri-containerd.kind";

    /// <summary>The spec annotation in which containerd's CRI names a container's sandbox.</summary>
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";
}
