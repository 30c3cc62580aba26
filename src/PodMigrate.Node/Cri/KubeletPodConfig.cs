using System.Globalization;
using Runtime.V1;

namespace PodMigrate.Node.Cri;

/// <summary>
/// What every CRI request kubelet builds for a pod has, whatever the pod's spec says (kuberuntime_sandbox.go
/// generatePodSandboxConfig, kuberuntime_container.go generateContainerConfig, labels.go), for a BestEffort pod with
/// the cgroupfs driver: kubelet's labels and annotations, the log directory, the pod cgroup, the default masked paths.
/// No Kubernetes object here: whoever plays the kubelet (the node emulator, the agent's CRI restore) turns its pod into
/// these requests and adds what comes from the spec.
/// </summary>
public static class KubeletPodConfig
{
    public const string DefaultNamespace = "default";
    public const string PodLogRoot = "/var/log/pods";
    public const long DefaultTerminationGracePeriodSeconds = 30;

    // securitycontext.DefaultMaskedPaths / DefaultReadonlyPaths (procMount Default).
    private static readonly string[] MaskedPaths =
    [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>/var/log/pods/&lt;namespace&gt;_&lt;name&gt;_&lt;uid&gt;, where the runtime writes container logs.</summary>
    public static string LogDirectory(string podNamespace, string podName, string podUid) => Path.Combine(PodLogRoot, $"{podNamespace}_{podName}_{podUid}");

    /// <summary>
    /// The pod's cgroup (cgroupfs driver, BestEffort): kubelet's /kubepods/besteffort/pod&lt;uid&gt;, under
    /// <paramref name="cgroupRoot"/> when the node's pods share a parent cgroup (a node with a memory capacity that is
    /// enforced, e.g. "/podmigrate/node-a"; empty: the cgroup hierarchy's root, as kubelet).
    /// </summary>
    public static string PodCgroupParent(string cgroupRoot, string podUid)
        => $"{(cgroupRoot ?? "").TrimEnd('/')}/kubepods/besteffort/pod{podUid}";

    /// <summary>The pod's namespaces: the node's network with hostNetwork, one PID namespace for the pod with shareProcessNamespace.</summary>
    public static NamespaceOption PodNamespaces(bool hostNetwork, bool shareProcessNamespace) => new()
    {
        Network = hostNetwork ? NamespaceMode.Node : NamespaceMode.Pod,
        Pid = shareProcessNamespace ? NamespaceMode.Pod : NamespaceMode.Container,
        Ipc = NamespaceMode.Pod,
    };

    /// <summary>
    /// The sandbox request for pod <paramref name="pod"/> (name, namespace, uid; the attempt is set here): its labels and
    /// annotations with kubelet's added, the hostname cut to 63 characters, the log directory and the pod cgroup.
    /// </summary>
    public static PodSandboxConfig NewSandboxConfig(
        PodSandboxMetadata pod,
        uint attempt,
        string hostname,
        IReadOnlyDictionary<string, string>? labels,
        IReadOnlyDictionary<string, string>? annotations,
        string configSource,
        DateTimeOffset seen,
        NamespaceOption namespaces,
        bool privileged,
        string cgroupRoot = "")
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(hostname);
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = pod.Name, Namespace = pod.Namespace, Uid = pod.Uid, Attempt = attempt },
            Hostname = hostname.Length > 63 ? hostname[..63].TrimEnd('-', '.') : hostname,
            LogDirectory = LogDirectory(pod.Namespace, pod.Name, pod.Uid),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = PodCgroupParent(cgroupRoot, pod.Uid),
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = namespaces, Privileged = privileged },
            },
        };
        foreach (var (key, value) in labels ?? new Dictionary<string, string>())
        {
            config.Labels[key] = value;
        }
        config.Labels[KubeletLabels.PodName] = pod.Name;
        config.Labels[KubeletLabels.PodNamespace] = pod.Namespace;
        config.Labels[KubeletLabels.PodUid] = pod.Uid;
        foreach (var (key, value) in annotations ?? new Dictionary<string, string>())
        {
            config.Annotations[key] = value;
        }
        // kubelet's config sources stamp these on every pod they hand to the pod workers.
        config.Annotations.TryAdd(KubeletLabels.ConfigSource, configSource);
        config.Annotations.TryAdd(KubeletLabels.ConfigSeen, seen.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture));
        return config;
    }

    /// <summary>
    /// A container's security context before the spec's fields: the pod's namespaces, seccomp Unconfined, and unless
    /// privileged kubelet's masked and read-only /proc and /sys paths.
    /// </summary>
    public static LinuxContainerSecurityContext NewSecurityContext(NamespaceOption namespaces, bool privileged)
    {
        var context = new LinuxContainerSecurityContext
        {
            NamespaceOptions = namespaces,
            Privileged = privileged,
            Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined },
        };
        if (!privileged)
        {
            context.MaskedPaths.AddRange(MaskedPaths);
            context.ReadonlyPaths.AddRange(ReadonlyPaths);
        }
        return context;
    }

    /// <summary>
    /// The container request for container <paramref name="containerName"/> of pod <paramref name="pod"/>: image
    /// (<paramref name="imageRef"/> as the runtime resolved it, <paramref name="userImage"/> as written), log path,
    /// BestEffort resources, kubelet's labels and annotations (termination message defaults: /dev/termination-log, File).
    /// </summary>
    public static ContainerConfig NewContainerConfig(
        PodSandboxMetadata pod,
        string containerName,
        string imageRef,
        string userImage,
        uint restartCount,
        LinuxContainerSecurityContext securityContext,
        long terminationGracePeriodSeconds,
        string hash)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = containerName, Attempt = restartCount },
            Image = new ImageSpec { Image = imageRef, UserSpecifiedImage = userImage },
            LogPath = $"{containerName}/{restartCount}.log",
            Linux = new LinuxContainerConfig
            {
                // BestEffort: the minimum cpu shares and the most killable OOM score.
                Resources = new LinuxContainerResources { CpuShares = 2, CpuPeriod = 100_000, OomScoreAdj = 1000 },
                SecurityContext = securityContext,
            },
        };
        config.Labels[KubeletLabels.PodName] = pod.Name;
        config.Labels[KubeletLabels.PodNamespace] = pod.Namespace;
        config.Labels[KubeletLabels.PodUid] = pod.Uid;
        config.Labels[KubeletLabels.ContainerName] = containerName;
        config.Annotations[KubeletLabels.ContainerHash] = hash;
        config.Annotations[KubeletLabels.ContainerRestartCount] = restartCount.ToString(CultureInfo.InvariantCulture);
        config.Annotations[KubeletLabels.ContainerTerminationMessagePath] = "/dev/termination-log";
        config.Annotations[KubeletLabels.ContainerTerminationMessagePolicy] = "File";
        config.Annotations[KubeletLabels.PodTerminationGracePeriod] = terminationGracePeriodSeconds.ToString(CultureInfo.InvariantCulture);
        return config;
    }

    /// <summary>kubelet's container hash: FNV-32a over the container spec's bytes (its JSON, for a Kubernetes container), in hex.</summary>
    public static string Hash(ReadOnlySpan<byte> spec)
    {
        var hash = 2166136261u;
        foreach (var b in spec)
        {
            hash = (hash ^ b) * 16777619u;
        }
        return hash.ToString("x", CultureInfo.InvariantCulture);
    }
}

/// <summary>A pod as <see cref="KubeletPodRunner.RunAsync"/> starts it: the CRI requests kubelet would send, made by whoever plays the kubelet.</summary>
/// <param name="Sandbox">The sandbox request; the runner sets its attempt from the sandboxes the pod had before.</param>
/// <param name="RuntimeHandler">The RuntimeClass handler (null: the node's default runtime).</param>
public sealed record CriPodSpec(PodSandboxConfig Sandbox, string? RuntimeHandler, IReadOnlyList<CriContainerSpec> Containers);

/// <summary>One container: its request (image = the user's image until the runner resolves it) and its pull policy (Always, IfNotPresent, Never).</summary>
public sealed record CriContainerSpec(ContainerConfig Config, string PullPolicy);
