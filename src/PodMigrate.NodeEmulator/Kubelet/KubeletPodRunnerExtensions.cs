using k8s.Models;
using PodMigrate.Node.Cri;

namespace PodMigrate.NodeEmulator.Kubelet;

/// <summary>Runs a Kubernetes pod through a node's <see cref="KubeletPodRunner"/>: the kubelet's translation (<see cref="PodCriConfig"/>) first.</summary>
public static class KubeletPodRunnerExtensions
{
    /// <summary>
    /// Starts <paramref name="pod"/> as kubelet would (config source <paramref name="configSource"/>: "api" for a pod
    /// from an API server, "file" for a manifest); its namespace is defaulted and a uid generated when it has none.
    /// </summary>
    public static Task<NodePod> RunAsync(this KubeletPodRunner runner, V1Pod pod, CancellationToken cancellationToken, string configSource = "api", TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(runner);
        return runner.RunAsync(PodCriConfig.ForRunner(pod, configSource, (time ?? TimeProvider.System).GetUtcNow()), cancellationToken);
    }
}
