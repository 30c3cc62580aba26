namespace PodMigrate.NodeEmulator;

/// <summary>The names the emulator writes onto sandboxes and API objects, in one place.</summary>
public static class EmulatorLabels
{
    /// <summary>On every sandbox the emulator creates: the node it emulates.</summary>
    public const string SandboxNode = "podmigrate.io/emulated-node";

    /// <summary>
    /// On every sandbox the emulator creates: the cluster it serves (the uid of its kube-system namespace). Several
    /// emulators of one node may share a containerd (tests, each with its own API server); each cleans up only its own.
    /// </summary>
    public const string SandboxCluster = "podmigrate.io/emulated-cluster";

    public const string Hostname = "kubernetes.io/hostname";
    public const string Os = "kubernetes.io/os";
    public const string Arch = "kubernetes.io/arch";

    /// <summary>Set by kubelet on a mirror pod (value: the static pod's hash); such pods are never run.</summary>
    public const string ConfigMirror = "kubernetes.io/config.mirror";
    public const string ConfigHash = "kubernetes.io/config.hash";

    public const string NodeLeaseNamespace = "kube-node-lease";
    public const string ClusterIdNamespace = "kube-system";

    public const string AgentNamespace = "podmigrate-system";
    public const string AgentContainer = "agent";
    public const string AgentPortName = "grpc";
    public const string AppName = "app.kubernetes.io/name";
    public const string AppComponent = "app.kubernetes.io/component";
    public const string AgentAppName = "podmigrate-agent";
    public const string AgentComponent = "agent";

    public static string AgentMirrorPodName(string nodeName) => $"{AgentAppName}-{nodeName}";
}
