using Microsoft.Extensions.Logging;
using PodMigrate.Kube.Client;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Probes;
using Runtime.V1;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>What every pod worker of one emulator shares.</summary>
internal sealed record PodWorkerContext(
    IKubernetesApi Api,
    CriConnection Cri,
    KubeletPodRunner Runner,
    Prober Prober,
    NodeEmulatorOptions Options,
    TimeProvider Time,
    ILogger Logger,
    string ClusterId,
    string RuntimeName)
{
    public string NodeName => Options.NodeName;

    /// <summary>The labels that mark a sandbox as this emulator's (see <see cref="EmulatorLabels.SandboxCluster"/>).</summary>
    public void MarkSandbox(PodSandboxConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Labels[EmulatorLabels.SandboxNode] = NodeName;
        config.Labels[EmulatorLabels.SandboxCluster] = ClusterId;
    }

    /// <summary>A filter for this emulator's sandboxes, of one pod when <paramref name="podUid"/> is set.</summary>
    public PodSandboxFilter OwnSandboxes(string? podUid)
    {
        var filter = new PodSandboxFilter();
        filter.LabelSelector[EmulatorLabels.SandboxNode] = NodeName;
        filter.LabelSelector[EmulatorLabels.SandboxCluster] = ClusterId;
        if (podUid is not null)
        {
            filter.LabelSelector[KubeletLabels.PodUid] = podUid;
        }
        return filter;
    }

    /// <summary>kubelet's containerID form: runtime name, "://", the runtime's id.</summary>
    public string ContainerId(string id) => $"{RuntimeName}://{id}";
}
