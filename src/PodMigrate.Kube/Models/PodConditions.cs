using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>core/v1 PodCondition: PodScheduled, Initialized, ContainersReady, Ready, PodReadyToStartContainers…</summary>
public sealed class PodCondition
{
    public const string ReadyType = "Ready";

    public string Type { get; set; } = "";

    /// <summary>"True", "False" or "Unknown".</summary>
    public string Status { get; set; } = "";

    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? LastProbeTime { get; set; }

    public DateTimeOffset? LastTransitionTime { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>core/v1 ContainerState: exactly one of the three is set.</summary>
public sealed class ContainerState
{
    public ContainerStateWaiting? Waiting { get; set; }

    public ContainerStateRunning? Running { get; set; }

    public ContainerStateTerminated? Terminated { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class ContainerStateWaiting
{
    /// <summary>ContainerCreating, ErrImagePull, ImagePullBackOff, ErrImageNeverPull, CrashLoopBackOff, CreateContainerError…</summary>
    public string? Reason { get; set; }

    public string? Message { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class ContainerStateRunning
{
    public DateTimeOffset? StartedAt { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class ContainerStateTerminated
{
    public int ExitCode { get; set; }

    public int? Signal { get; set; }

    /// <summary>Completed, Error, OOMKilled, ContainerStatusUnknown…</summary>
    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? FinishedAt { get; set; }

    [JsonPropertyName("containerID")]
    public string? ContainerId { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
