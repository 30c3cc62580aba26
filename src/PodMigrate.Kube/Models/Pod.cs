using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>core/v1 Pod.</summary>
public sealed class Pod
{
    public const string ApiVersionV1 = "v1";
    public const string KindName = "Pod";

    public string? ApiVersion { get; set; } = ApiVersionV1;

    public string? Kind { get; set; } = KindName;

    public ObjectMeta Metadata { get; set; } = new();

    public PodSpec Spec { get; set; } = new();

    public PodStatus? Status { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>"namespace/name", the way kubectl and the logs name a pod.</summary>
    [JsonIgnore]
    public string Key => $"{Metadata.Namespace ?? "default"}/{Metadata.Name}";
}

public sealed class PodSpec
{
    public List<Container> Containers { get; set; } = [];

    public List<Container>? InitContainers { get; set; }

    public string? RestartPolicy { get; set; }

    public string? NodeName { get; set; }

    public string? Hostname { get; set; }

    public string? Subdomain { get; set; }

    public long? TerminationGracePeriodSeconds { get; set; }

    public bool? ShareProcessNamespace { get; set; }

    public bool? HostNetwork { get; set; }

    public string? ServiceAccountName { get; set; }

    public Dictionary<string, string>? NodeSelector { get; set; }

    public List<PodSchedulingGate>? SchedulingGates { get; set; }

    public List<Volume>? Volumes { get; set; }

    public PodSecurityContext? SecurityContext { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class PodSchedulingGate
{
    public string Name { get; set; } = "";
}

/// <summary>A pod volume: the sources PodMigrate reasons about are typed, the others stay in <see cref="ExtensionData"/>.</summary>
public sealed class Volume
{
    public string Name { get; set; } = "";

    public JsonElement? HostPath { get; set; }

    public JsonElement? EmptyDir { get; set; }

    public PersistentVolumeClaimVolumeSource? PersistentVolumeClaim { get; set; }

    public JsonElement? Nfs { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class PersistentVolumeClaimVolumeSource
{
    public string ClaimName { get; set; } = "";

    public bool? ReadOnly { get; set; }
}

public sealed class Container
{
    public string Name { get; set; } = "";

    public string? Image { get; set; }

    public List<string>? Command { get; set; }

    public List<string>? Args { get; set; }

    public string? WorkingDir { get; set; }

    public List<EnvVar>? Env { get; set; }

    public List<ContainerPort>? Ports { get; set; }

    public string? ImagePullPolicy { get; set; }

    public string? TerminationMessagePath { get; set; }

    public string? TerminationMessagePolicy { get; set; }

    public bool? Stdin { get; set; }

    public bool? StdinOnce { get; set; }

    public bool? Tty { get; set; }

    public Probe? ReadinessProbe { get; set; }

    public SecurityContext? SecurityContext { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class EnvVar
{
    public string Name { get; set; } = "";

    public string? Value { get; set; }

    /// <summary>valueFrom and anything else, kept as JSON.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class ContainerPort
{
    public string? Name { get; set; }

    [JsonPropertyName("containerPort")]
    public int Port { get; set; }

    public string? Protocol { get; set; }

    public int? HostPort { get; set; }

    [JsonPropertyName("hostIP")]
    public string? HostIp { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class PodStatus
{
    public string? Phase { get; set; }

    public string? Message { get; set; }

    public string? Reason { get; set; }

    [JsonPropertyName("hostIP")]
    public string? HostIp { get; set; }

    [JsonPropertyName("podIP")]
    public string? PodIp { get; set; }

    [JsonPropertyName("podIPs")]
    public List<PodIp>? PodIps { get; set; }

    [JsonPropertyName("hostIPs")]
    public List<HostIp>? HostIps { get; set; }

    public DateTimeOffset? StartTime { get; set; }

    public List<PodCondition>? Conditions { get; set; }

    public List<ContainerStatus>? ContainerStatuses { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }

    /// <summary>The Ready condition is True: the kubelet's verdict that the pod serves (readiness probes passed).</summary>
    [JsonIgnore]
    public bool IsReady => Conditions?.Exists(c => c.Type == PodCondition.ReadyType && c.Status == "True") == true;
}

public sealed class PodIp
{
    public string Ip { get; set; } = "";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class HostIp
{
    public string Ip { get; set; } = "";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class ContainerStatus
{
    public string Name { get; set; } = "";

    [JsonPropertyName("containerID")]
    public string? ContainerId { get; set; }

    public string? Image { get; set; }

    [JsonPropertyName("imageID")]
    public string? ImageId { get; set; }

    public bool Ready { get; set; }

    public int RestartCount { get; set; }

    public bool? Started { get; set; }

    public ContainerState? State { get; set; }

    public ContainerState? LastState { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
