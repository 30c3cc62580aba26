using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;
using Runtime.V1;
using KubeContainer = k8s.Models.V1Container;

namespace PodMigrate.NodeEmulator.Kubelet;

/// <summary>
/// A pod's spec turned into the CRI requests kubelet builds for it (kuberuntime_sandbox.go generatePodSandboxConfig,
/// kuberuntime_container.go generateContainerConfig, determineEffectiveSecurityContext), for a BestEffort pod with the
/// cgroupfs driver. What every pod gets whatever its spec is <see cref="KubeletPodConfig"/>'s (the node's side, which
/// knows no Kubernetes object); this class adds what the spec says. Pure: the same pod gives the same requests, apart
/// from the <c>seen</c> times.
/// </summary>
public static class PodCriConfig
{
    public static string NamespaceOf(V1Pod pod) => string.IsNullOrEmpty(pod.Metadata.NamespaceProperty) ? KubeletPodConfig.DefaultNamespace : pod.Metadata.NamespaceProperty;

    public static long TerminationGracePeriodSeconds(V1Pod pod) => pod.Spec.TerminationGracePeriodSeconds ?? KubeletPodConfig.DefaultTerminationGracePeriodSeconds;

    /// <summary>
    /// The CRI runtime handler of the pod's <c>runtimeClassName</c> (null: the node's default runtime). The kubelet
    /// looks the RuntimeClass up for its <c>handler</c>; here the name is the handler, which holds for every RuntimeClass
    /// PodMigrate ships (deploy/60-runtimeclass.yaml: podmigrate → podmigrate).
    /// </summary>
    public static string? RuntimeHandler(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        return pod.Spec.RuntimeClassName is { Length: > 0 } handler ? handler : null;
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
    /// The whole pod for <see cref="KubeletPodRunner.RunAsync"/> (a static pod: no API server to resolve anything). The
    /// pod's namespace is defaulted and a uid generated when the manifest has none, on <paramref name="pod"/> itself.
    /// </summary>
    public static CriPodSpec ForRunner(V1Pod pod, string configSource, DateTimeOffset seen, string cgroupRoot = "")
    {
        ArgumentNullException.ThrowIfNull(pod);
        pod.Metadata.NamespaceProperty = NamespaceOf(pod);
        pod.Metadata.Uid ??= Guid.NewGuid().ToString();
        return new CriPodSpec(
            BuildSandboxConfig(pod, attempt: 0, configSource, seen, cgroupRoot),
            RuntimeHandler(pod),
            [.. pod.Spec.Containers.Select(c => new CriContainerSpec(BuildContainerConfig(pod, c, c.Image ?? "", restartCount: 0), PullPolicy(c)))]);
    }

    public static PodSandboxConfig BuildSandboxConfig(V1Pod pod, uint attempt, string configSource, DateTimeOffset seen, string cgroupRoot = "")
    {
        ArgumentNullException.ThrowIfNull(pod);
        var identity = Identity(pod);
        var config = KubeletPodConfig.NewSandboxConfig(
            identity, attempt,
            string.IsNullOrEmpty(pod.Spec.Hostname) ? identity.Name : pod.Spec.Hostname,
            ReadOnly(pod.Metadata.Labels), ReadOnly(pod.Metadata.Annotations), configSource, seen, Namespaces(pod),
            // containerd refuses a privileged container in a sandbox that is not privileged (kubelet: any container).
            privileged: pod.Spec.Containers.Any(c => c.SecurityContext?.Privileged == true),
            cgroupRoot);
        foreach (var port in pod.Spec.Containers.SelectMany(c => c.Ports ?? []))
        {
            config.PortMappings.Add(new PortMapping
            {
                ContainerPort = port.ContainerPort,
                HostPort = port.HostPort ?? 0,
                HostIp = port.HostIP ?? "",
                Protocol = ProtocolOf(port),
            });
        }
        return config;
    }

    public static ContainerConfig BuildContainerConfig(V1Pod pod, KubeContainer container, string imageRef, uint restartCount)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        var env = Environment(pod, container);
        var config = KubeletPodConfig.NewContainerConfig(
            Identity(pod), container.Name, imageRef, container.Image ?? "", restartCount,
            ContainerSecurityContext(pod, container), TerminationGracePeriodSeconds(pod), Hash(container));
        config.WorkingDir = container.WorkingDir ?? "";
        config.Stdin = container.Stdin ?? false;
        config.StdinOnce = container.StdinOnce ?? false;
        config.Tty = container.Tty ?? false;
        config.Command.AddRange((container.Command ?? []).Select(s => Expand(s, env)));
        config.Args.AddRange((container.Args ?? []).Select(s => Expand(s, env)));
        foreach (var (key, value) in env)
        {
            config.Envs.Add(new global::Runtime.V1.KeyValue { Key = key, Value = Google.Protobuf.ByteString.CopyFromUtf8(value) });
        }
        config.Annotations[KubeletLabels.ContainerTerminationMessagePath] = container.TerminationMessagePath ?? "/dev/termination-log";
        config.Annotations[KubeletLabels.ContainerTerminationMessagePolicy] = container.TerminationMessagePolicy ?? "File";
        if (pod.Metadata.DeletionGracePeriodSeconds is { } deletionGrace)
        {
            config.Annotations[KubeletLabels.PodDeletionGracePeriod] = deletionGrace.ToString(CultureInfo.InvariantCulture);
        }
        if (container.Ports is { Count: > 0 } ports)
        {
            config.Annotations[KubeletLabels.ContainerPorts] = PortsAnnotation(ports);
        }
        return config;
    }

    /// <summary>
    /// The container's effective security context, as kubelet's determineEffectiveSecurityContext builds it: the
    /// container's fields over the pod's, capabilities passed by name, no_new_privs when allowPrivilegeEscalation is
    /// false, seccomp Unconfined unless a profile is given. (runAsNonRoot against the image's user is not checked here.)
    /// </summary>
    public static LinuxContainerSecurityContext ContainerSecurityContext(V1Pod pod, KubeContainer container)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(container);
        var podContext = pod.Spec.SecurityContext;
        var own = container.SecurityContext;
        var context = KubeletPodConfig.NewSecurityContext(Namespaces(pod), privileged: own?.Privileged ?? false);
        context.ReadonlyRootfs = own?.ReadOnlyRootFilesystem ?? false;
        context.NoNewPrivs = own?.AllowPrivilegeEscalation == false;
        context.Seccomp = SecurityProfile(own?.SeccompProfile ?? podContext?.SeccompProfile);
        if ((own?.RunAsUser ?? podContext?.RunAsUser) is { } user)
        {
            context.RunAsUser = new Int64Value { Value = user };
        }
        if ((own?.RunAsGroup ?? podContext?.RunAsGroup) is { } group)
        {
            context.RunAsGroup = new Int64Value { Value = group };
        }
        context.SupplementalGroups.AddRange((podContext?.SupplementalGroups ?? []).OfType<long>());
        if (own?.Capabilities is { } capabilities)
        {
            context.Capabilities = new Capability();
            context.Capabilities.AddCapabilities.AddRange(capabilities.Add ?? []);
            context.Capabilities.DropCapabilities.AddRange(capabilities.Drop ?? []);
        }
        return context;
    }

    /// <summary>The ports as kubelet writes them into the annotation: Go's JSON of []v1.ContainerPort, in its field order.</summary>
    private static string PortsAnnotation(IList<V1ContainerPort> ports)
    {
        var array = new JsonArray();
        foreach (var port in ports)
        {
            var entry = new JsonObject();
            if (!string.IsNullOrEmpty(port.Name))
            {
                entry["name"] = port.Name;
            }
            if (port.HostPort is { } hostPort and not 0)
            {
                entry["hostPort"] = hostPort;
            }
            entry["containerPort"] = port.ContainerPort;
            if (!string.IsNullOrEmpty(port.Protocol))
            {
                entry["protocol"] = port.Protocol;
            }
            if (!string.IsNullOrEmpty(port.HostIP))
            {
                entry["hostIP"] = port.HostIP;
            }
            array.Add(entry);
        }
        return array.ToJsonString();
    }

    /// <summary>kubelet's container hash: FNV-32a over the container's JSON, in hex.</summary>
    public static string Hash(KubeContainer container)
        => KubeletPodConfig.Hash(Encoding.UTF8.GetBytes(KubeJson.Serialize(container, PackageJson.TypeInfo<V1Container>())));

    private static PodSandboxMetadata Identity(V1Pod pod)
    {
        var ns = NamespaceOf(pod);
        var name = pod.Metadata.Name ?? throw PodMigrateException.InvalidArgument("pod has no metadata.name");
        var uid = pod.Metadata.Uid ?? throw PodMigrateException.InvalidArgument($"pod {ns}/{name} has no metadata.uid");
        return new PodSandboxMetadata { Namespace = ns, Name = name, Uid = uid };
    }

    private static Dictionary<string, string>? ReadOnly(IDictionary<string, string>? map)
        => map is null ? null : new Dictionary<string, string>(map, StringComparer.Ordinal);

    private static NamespaceOption Namespaces(V1Pod pod)
        => KubeletPodConfig.PodNamespaces(hostNetwork: pod.Spec.HostNetwork == true, shareProcessNamespace: pod.Spec.ShareProcessNamespace == true);

    private static global::Runtime.V1.SecurityProfile SecurityProfile(V1SeccompProfile? profile) => profile?.Type switch
    {
        "RuntimeDefault" => new() { ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.RuntimeDefault },
        "Localhost" => new()
        {
            ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.Localhost,
            LocalhostRef = profile.LocalhostProfile ?? throw PodMigrateException.InvalidArgument("seccompProfile Localhost needs localhostProfile"),
        },
        null or "" or "Unconfined" => new() { ProfileType = global::Runtime.V1.SecurityProfile.Types.ProfileType.Unconfined },
        var other => throw PodMigrateException.InvalidArgument($"seccompProfile type '{other}' is not RuntimeDefault, Unconfined or Localhost"),
    };

    private static global::Runtime.V1.Protocol ProtocolOf(V1ContainerPort port) => port.Protocol?.ToUpperInvariant() switch
    {
        null or "" or "TCP" => global::Runtime.V1.Protocol.Tcp,
        "UDP" => global::Runtime.V1.Protocol.Udp,
        "SCTP" => global::Runtime.V1.Protocol.Sctp,
        var other => throw PodMigrateException.InvalidArgument($"port {port.ContainerPort}: unknown protocol {other}"),
    };

    /// <summary>The container's environment in order; valueFrom needs an API server, which a node runner does not have.</summary>
    private static List<KeyValuePair<string, string>> Environment(V1Pod pod, KubeContainer container)
    {
        var env = new List<KeyValuePair<string, string>>();
        foreach (var variable in container.Env ?? [])
        {
            if (variable.Value is null && variable.ValueFrom is not null)
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
