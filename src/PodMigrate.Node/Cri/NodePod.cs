using System.Text.Json.Serialization;

namespace PodMigrate.Node.Cri;

/// <summary>A pod as one node's runtime sees it: its sandbox and the containers in it, grouped by CRI labels.</summary>
public sealed record NodePod(
    string Namespace,
    string Name,
    string Uid,
    string SandboxId,
    string State,
    string? Ip,
    uint Attempt,
    DateTimeOffset CreatedAt,
    IReadOnlyList<NodeContainer> Containers)
{
    [JsonIgnore]
    public string Key => $"{Namespace}/{Name}";
}

public sealed record NodeContainer(
    string Name,
    string Id,
    string State,
    string Image,
    string ImageRef,
    uint Attempt,
    DateTimeOffset CreatedAt);

/// <summary>What `podmigrate node exec` prints.</summary>
public sealed record NodeExecResult(int ExitCode, string Stdout, string Stderr);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(NodePod))]
[JsonSerializable(typeof(IReadOnlyList<NodePod>))]
[JsonSerializable(typeof(NodeExecResult))]
public sealed partial class NodePodJsonContext : JsonSerializerContext;
