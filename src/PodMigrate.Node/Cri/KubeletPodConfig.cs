using System.Globalization;
using System.Text;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using Runtime.V1;
using KubeContainer = PodMigrate.Kube.Models.Container;

namespace PodMigrate.Node.Cri;

/// <summary>
/// The CRI requests kubelet builds for a pod (kuberuntime_sandbox.go generatePodSandboxConfig,
/// kuberuntime_container.go generateContainerConfig, labels.go), for a BestEffort pod with the cgroupfs driver.
/// Pure: the same pod gives the same requests, apart from <paramref name="seen"/> times.
/// </summary>
public static class KubeletPodConfig
{
    public const string DefaultNamespace = "default";
    public const string PodLogRoot = "/var/log/pods";
    private const long DefaultTerminationGracePeriodSeconds = 30;

    // securitycontext.DefaultMaskedPaths / DefaultReadonlyPaths (procMount Default).
    private static readonly string[] MaskedPaths =
    [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    public static string NamespaceOf(Pod pod) => string.IsNullOrEmpty(pod.Metadata.Namespace) ? DefaultNamespace : pod.Metadata.Namespace;

    /// <summary>/var/log/pods/&lt;namespace&gt;_&lt;name&gt;_&lt;uid&gt;, where the runtime writes container logs.</summary>
    public static string LogDirectory(string podNamespace, string podName, string podUid) => Path.Combine(PodLogRoot, $"{podNamespace}_{podName}_{podUid}");

    public static long TerminationGracePeriodSeconds(Pod pod) => pod.Spec.TerminationGracePeriodSeconds ?? DefaultTerminationGracePeriodSeconds;

    /// <summary>
    /// The CRI runtime handler of the pod's <c>runtimeClassName</c> (null: the node's default runtime). The kubelet
    /// looks the RuntimeClass up for its <c>handler</c>; here the name is the handler, which holds for every RuntimeClass
    /// PodMigrate ships (deploy/60-runtimeclass.yaml: podmigrate → podmigrate). Read from the spec's extension data
    /// until the Pod model has the field.
    /// </summary>
    public static string? RuntimeHandler(Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return pod.Spec.ExtensionData?.TryGetValue("runtimeClassName", out var name) == true
               && name.ValueKind == System.Text.Json.JsonValueKind.String && name.GetString() is { Length: > 0 } handler
            ? handler : null;
    }

    /// <summary>The container's imagePullPolicy, or the API server's default: Always for :latest or no tag, IfNotPresent otherwise.</summary>
    public static string PullPolicy(KubeContainer container)
    {
        ArgumentNullException.ThrowIfNull(container);
        if (!string.IsNullOrEmpty(container.ImagePullPolicy))
        {
            return container.ImagePullPolicy;
        }
        var image = container.Image ?? "";
        if (image.Contains('@', StringComparison.Ordinal))
        {
            return "IfNotPresent";
        }
        var lastSegment = image[(image.LastIndexOf('/') + 1)..];
        var colon = lastSegment.LastIndexOf(':');
        return colon < 0 || lastSegment[(colon + 1)..] == "latest" ? "Always" : "IfNotPresent";
    }

    /// <summary>
    /// The pod's cgroup (cgroupfs driver, BestEffort): kubelet's /kubepods/besteffort/pod&lt;uid&gt;, under
    /// <paramref name="cgroupRoot"/> when the node's pods share a parent cgroup (a node with a memory capacity that is
    /// enforced, e.g. "/podmigrate/node-a"; empty: the cgroup hierarchy's root, as kubelet).
    /// </summary>
    public static string PodCgroupParent(string cgroupRoot, string podUid)
        => $"{(cgroupRoot ?? "").TrimEnd('/')}/kubepods/besteffort/pod{podUid}";

    public static PodSandboxConfig BuildSandboxConfig(Pod pod, uint attempt, string configSource, DateTimeOffset seen, string cgroupRoot = "")
    {
        ArgumentNullException.ThrowIfNull(pod);
        var ns = NamespaceOf(pod);
        var name = pod.Metadata.Name ?? throw PodMigrateException.InvalidArgument("pod has no metadata.name");
        var uid = pod.Metadata.Uid ?? throw PodMigrateException.InvalidArgument($"pod {ns}/{name} has no metadata.uid");
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = ns, Uid = uid, Attempt = attempt },
            Hostname = Hostname(pod),
            LogDirectory = LogDirectory(ns, name, uid),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = PodCgroupParent(cgroupRoot, uid),
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = NamespaceOptions(pod),
                    // containerd refuses a privileged container in a sandbox that is not privileged (kubelet: any container).
                    Privileged = pod.Spec.Containers.Any(c => c.SecurityContext?.Privileged == true),
                },
            },
        };
        if (pod.Metadata.Labels is { } labels)
        {
            config.Labels.Add(labels);
        }
        config.Labels[KubeletLabels.PodName] = name;
        config.Labels[KubeletLabels.PodNamespace] = ns;
        config.Labels[KubeletLabels.PodUid] = uid;
        if (pod.Metadata.Annotations is { } annotations)
        {
            config.Annotations.Add(annotations);
        }
        // kubelet's config sources stamp these on every pod they hand to the pod workers.
        config.Annotations.TryAdd(KubeletLabels.ConfigSource, configSource);
        config.Annotations.TryAdd(KubeletLabels.ConfigSeen, seen.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture));
        foreach (var port in pod.Spec.Containers.SelectMany(c => c.Ports ?? []))
        {
            config.PortMappings.Add(new PortMapping
            {
                ContainerPort = port.Port,
                HostPort = port.HostPort ?? 0,
                HostIp = port.HostIp ?? "",
                Protocol = ProtocolOf(port),
            });
        }
        return config;
    }

    public static ContainerConfig BuildContainerConfig(Pod pod, KubeContainer container, string imageRef, uint restartCount)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        var ns = NamespaceOf(pod);
        var env = Environment(pod, container);
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = container.Name, Attempt = restartCount },
            Image = new ImageSpec { Image = imageRef, UserSpecifiedImage = container.Image ?? "" },
            WorkingDir = container.WorkingDir ?? "",
            LogPath = $"{container.Name}/{restartCount}.log",
            Stdin = container.Stdin ?? false,
            StdinOnce = container.StdinOnce ?? false,
            Tty = container.Tty ?? false,
            Linux = new LinuxContainerConfig
            {
                // BestEffort: the minimum cpu shares and the most killable OOM score.
                Resources = new LinuxContainerResources { CpuShares = 2, CpuPeriod = 100_000, OomScoreAdj = 1000 },
                SecurityContext = ContainerSecurityContext(pod, container),
            },
        };
        config.Command.AddRange((container.Command ?? []).Select(s => Expand(s, env)));
        config.Args.AddRange((container.Args ?? []).Select(s => Expand(s, env)));
        foreach (var (key, value) in env)
        {
            config.Envs.Add(new global::Runtime.V1.KeyValue { Key = key, Value = Google.Protobuf.ByteString.CopyFromUtf8(value) });
        }
        config.Labels[KubeletLabels.PodName] = pod.Metadata.Name ?? "";
        config.Labels[KubeletLabels.PodNamespace] = ns;
        config.Labels[KubeletLabels.PodUid] = pod.Metadata.Uid ?? "";
        config.Labels[KubeletLabels.ContainerName] = container.Name;
        config.Annotations[KubeletLabels.ContainerHash] = Hash(container);
        config.Annotations[KubeletLabels.ContainerRestartCount] = restartCount.ToString(CultureInfo.InvariantCulture);
        config.Annotations[KubeletLabels.ContainerTerminationMessagePath] = container.TerminationMessagePath ?? "/dev/termination-log";
        config.Annotations[KubeletLabels.ContainerTerminationMessagePolicy] = container.TerminationMessagePolicy ?? "File";
        config.Annotations[KubeletLabels.PodTerminationGracePeriod] = TerminationGracePeriodSeconds(pod).ToString(CultureInfo.InvariantCulture);
        if (pod.Metadata.DeletionGracePeriodSeconds is { } deletionGrace)
        {
            config.Annotations[KubeletLabels.PodDeletionGracePeriod] = deletionGrace.ToString(CultureInfo.InvariantCulture);
        }
        if (container.Ports is { Count: > 0 } ports)
        {
            config.Annotations[KubeletLabels.ContainerPorts] = KubeJson.Serialize(ports, KubeJsonContext.Default.ListContainerPort);
        }
        return config;
    }

    /// <summary>
    /// The container's effective security context, as kubelet's determineEffectiveSecurityContext builds it: the
    /// container's fields over the pod's, capabilities passed by name, no_new_privs when allowPrivilegeEscalation is
    /// false, seccomp Unconfined unless a profile is given. (runAsNonRoot against the image's user is not checked here.)
    /// </summary>
    public static LinuxContainerSecurityContext ContainerSecurityContext(Pod pod, KubeContainer container)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        var podContext = pod.Spec.SecurityContext;
        var own = container.SecurityContext;
        var context = new LinuxContainerSecurityContext
        {
            NamespaceOptions = NamespaceOptions(pod),
            Privileged = own?.Privileged ?? false,
            ReadonlyRootfs = own?.ReadOnlyRootFilesystem ?? false,
            NoNewPrivs = own?.AllowPrivilegeEscalation == false,
            Seccomp = SecurityProfile(own?.SeccompProfile ?? podContext?.SeccompProfile),
        };
        if ((own?.RunAsUser ?? podContext?.RunAsUser) is { } user)
        {
            context.RunAsUser = new Int64Value { Value = user };
        }
        if ((own?.RunAsGroup ?? podContext?.RunAsGroup) is { } group)
        {
            context.RunAsGroup = new Int64Value { Value = group };
        }
        context.SupplementalGroups.AddRange(podContext?.SupplementalGroups ?? []);
        if (own?.Capabilities is { } capabilities)
        {
            context.Capabilities = new Capability();
            context.Capabilities.AddCapabilities.AddRange(capabilities.Add ?? []);
            context.Capabilities.DropCapabilities.AddRange(capabilities.Drop ?? []);
        }
        if (!context.Privileged)
        {
            context.MaskedPaths.AddRange(MaskedPaths);
            context.ReadonlyPaths.AddRange(ReadonlyPaths);
        }
        return context;
    }

    private static global::Runtime.V1.SecurityProfile SecurityProfile(SeccompProfile? profile) => profile?.Type switch
    {
        Kube.Models.SeccompProfile.RuntimeDefault => new() { ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.RuntimeDefault },
        Kube.Models.SeccompProfile.Localhost => new()
        {
            ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.Localhost,
            LocalhostRef = profile.LocalhostProfile ?? throw PodMigrateException.InvalidArgument("seccompProfile Localhost needs localhostProfile"),
        },
        null or "" or Kube.Models.SeccompProfile.Unconfined => new() { ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.Unconfined },
        var other => throw PodMigrateException.InvalidArgument($"seccompProfile type '{other}' is not RuntimeDefault, Unconfined or Localhost"),
    };

    /// <summary>kubelet's container hash: FNV-32a over the container's JSON, in hex.</summary>
    public static string Hash(KubeContainer container)
    {
        var bytes = Encoding.UTF8.GetBytes(KubeJson.Serialize(container, KubeJsonContext.Default.Container));
        var hash = 2166136261u;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 16777619u;
        }
        return hash.ToString("x", CultureInfo.InvariantCulture);
    }

    private static string Hostname(Pod pod)
    {
        var hostname = string.IsNullOrEmpty(pod.Spec.Hostname) ? pod.Metadata.Name! : pod.Spec.Hostname;
        return hostname.Length > 63 ? hostname[..63].TrimEnd('-', '.') : hostname;
    }

    private static NamespaceOption NamespaceOptions(Pod pod) => new()
    {
        Network = pod.Spec.HostNetwork == true ? NamespaceMode.Node : NamespaceMode.Pod,
        Pid = pod.Spec.ShareProcessNamespace == true ? NamespaceMode.Pod : NamespaceMode.Container,
        Ipc = NamespaceMode.Pod,
    };

    private static global::Runtime.V1.Protocol ProtocolOf(ContainerPort port) => port.Protocol?.ToUpperInvariant() switch
    {
        null or "" or "TCP" => global::Runtime.V1.Protocol.Tcp,
        "UDP" => global::Runtime.V1.Protocol.Udp,
        "SCTP" => global::Runtime.V1.Protocol.Sctp,
        var other => throw PodMigrateException.InvalidArgument($"port {port.Port}: unknown protocol {other}"),
    };

    /// <summary>The container's environment in order; valueFrom needs an API server, which a node runner does not have.</summary>
    private static List<KeyValuePair<string, string>> Environment(Pod pod, KubeContainer container)
    {
        var env = new List<KeyValuePair<string, string>>();
        foreach (var variable in container.Env ?? [])
        {
            if (variable.Value is null && variable.ExtensionData?.ContainsKey("valueFrom") == true)
            {
                throw PodMigrateException.InvalidArgument(
                    $"pod {NamespaceOf(pod)}/{pod.Metadata.Name} container {container.Name}: env {variable.Name} uses valueFrom, which the node runner does not resolve");
            }
            var expanded = Expand(variable.Value ?? "", env);
            env.RemoveAll(e => e.Key == variable.Name);
            env.Add(new(variable.Name, expanded));
        }
        return env;
    }

    /// <summary>kubelet's $(VAR) expansion (third_party/forked/golang/expansion): $$ escapes, unknown names stay as written.</summary>
    public static string Expand(string input, IReadOnlyList<KeyValuePair<string, string>> env)
    {
        ArgumentNullException.ThrowIfNull(input);
        var output = new StringBuilder(input.Length);
        for (var i = 0; i < input.Length; i++)
        {
            if (input[i] != '$' || i + 1 >= input.Length)
            {
                output.Append(input[i]);
                continue;
            }
            if (input[i + 1] == '$')
            {
                output.Append('$');
                i++;
                continue;
            }
            var close = input[i + 1] == '(' ? input.IndexOf(')', i + 2) : -1;
            if (close < 0)
            {
                output.Append(input[i]);
                continue;
            }
            var name = input[(i + 2)..close];
            var match = env.LastOrDefault(e => e.Key == name);
            output.Append(match.Key is null ? input[i..(close + 1)] : match.Value);
            i = close;
        }
        return output.ToString();
    }
}
