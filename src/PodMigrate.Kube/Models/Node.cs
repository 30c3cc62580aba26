using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>core/v1 Node: what a controller reads to choose a target (Ready, schedulable, allocatable).</summary>
public sealed class Node
{
    public string? ApiVersion { get; set; } = "v1";

    public string? Kind { get; set; } = "Node";

    public ObjectMeta Metadata { get; set; } = new();

    public NodeSpec Spec { get; set; } = new();

    public NodeStatus? Status { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class NodeSpec
{
    public bool? Unschedulable { get; set; }

    [JsonPropertyName("podCIDR")]
    public string? PodCidr { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class NodeStatus
{
    /// <summary>Quantities as the API writes them ("4", "16Gi", "110").</summary>
    public Dictionary<string, string>? Capacity { get; set; }

    public Dictionary<string, string>? Allocatable { get; set; }

    public List<NodeCondition>? Conditions { get; set; }

    public List<NodeAddress>? Addresses { get; set; }

    public NodeSystemInfo? NodeInfo { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class NodeCondition
{
    public string Type { get; set; } = "";

    /// <summary>"True", "False" or "Unknown".</summary>
    public string Status { get; set; } = "";

    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? LastHeartbeatTime { get; set; }

    public DateTimeOffset? LastTransitionTime { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class NodeAddress
{
    public string Type { get; set; } = "";

    public string Address { get; set; } = "";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>core/v1 NodeSystemInfo: what `kubectl get nodes -o wide` shows (OS image, kernel, runtime).</summary>
public sealed class NodeSystemInfo
{
    [JsonPropertyName("machineID")]
    public string MachineId { get; set; } = "";

    [JsonPropertyName("systemUUID")]
    public string SystemUuid { get; set; } = "";

    [JsonPropertyName("bootID")]
    public string BootId { get; set; } = "";

    public string KernelVersion { get; set; } = "";

    public string OsImage { get; set; } = "";

    /// <summary>"containerd://2.1.9".</summary>
    public string ContainerRuntimeVersion { get; set; } = "";

    public string KubeletVersion { get; set; } = "";

    public string OperatingSystem { get; set; } = "";

    public string Architecture { get; set; } = "";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
