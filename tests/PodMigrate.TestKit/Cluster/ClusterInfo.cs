using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.TestKit.Cluster;

/// <summary>$RUN/cluster.json, as scripts/cluster.sh writes it.</summary>
public sealed record ClusterInfo(string RunDir, string Registry, string SandboxImage, string Share, IReadOnlyList<ClusterNode> Nodes)
{
    public ClusterNode Node(string name) => Nodes.FirstOrDefault(n => n.Name == name)
        ?? throw new InvalidOperationException($"the local cluster in {RunDir} has no node {name} (nodes: {string.Join(", ", Nodes.Select(n => n.Name))})");

    public static ClusterInfo Read(string path)
        => JsonSerializer.Deserialize(File.ReadAllText(path), ClusterInfoJsonContext.Default.ClusterInfo)
            ?? throw new InvalidOperationException($"{path} is empty");
}

public sealed record ClusterNode(
    string Name,
    string ContainerdSocket,
    string ContainerdRoot,
    string ContainerdLog,
    string Subnet,
    string Gateway,
    string Bridge,
    string AgentSocket,
    int AgentPort,
    string? ContainerdVersion = null,
    string? PreparedDir = null,
    bool RestoreRuntime = false);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ClusterInfo))]
internal sealed partial class ClusterInfoJsonContext : JsonSerializerContext;
