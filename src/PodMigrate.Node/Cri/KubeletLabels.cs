namespace PodMigrate.Node.Cri;

/// <summary>The CRI labels and annotations kubelet puts on sandboxes and containers (pkg/kubelet/types, kuberuntime/labels.go).</summary>
public static class KubeletLabels
{
    public const string PodName = "io.kubernetes.pod.name";
    public const string PodNamespace = "io.kubernetes.pod.namespace";
    public const string PodUid = "io.kubernetes.pod.uid";
    public const string ContainerName = "io.kubernetes.container.name";

    public const string ContainerHash = "io.kubernetes.container.hash";
    public const string ContainerRestartCount = "io.kubernetes.container.restartCount";
    public const string ContainerTerminationMessagePath = "io.kubernetes.container.terminationMessagePath";
    public const string ContainerTerminationMessagePolicy = "io.kubernetes.container.terminationMessagePolicy";
    public const string ContainerPorts = "io.kubernetes.container.ports";
    public const string PodTerminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod";
    public const string PodDeletionGracePeriod = "io.kubernetes.pod.deletionGracePeriod";

    public const string ConfigSource = "kubernetes.io/config.source";
    public const string ConfigSeen = "kubernetes.io/config.seen";
}
