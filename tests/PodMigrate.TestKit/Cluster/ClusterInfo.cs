using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.TestKit.Cluster;

/// <summary>$RUN/cluster.json, as scripts/cluster.sh writes it.</summary>
public sealed record ClusterInfo(string RunDir, string Registry, string SandboxImage, string Share, IReadOnlyList<ClusterNode> Nodes)
{
    /// <summary>
    /// The node of that name; a default name (node-a, node-b…) also finds the same letter of an instance started with
    /// --name-prefix (s3-a…), so tests that name node-a run on a second instance too.
    /// </summary>
    public ClusterNode Node(string name) => Nodes.FirstOrDefault(n => n.Name == name)
        ?? (name.StartsWith("node-", StringComparison.Ordinal) ? Nodes.FirstOrDefault(n => n.Name.EndsWith(name["node".Length..], StringComparison.Ordinal)) : null)
        ?? throw new InvalidOperationException($"the local cluster in {RunDir} has no node {name} (nodes: {string.Join(", ", Nodes.Select(n => n.Name))})");

    /// <summary>
    /// A node whose runtime restores through CRI, another than <paramref name="preferNot"/> when there is one (so a
    /// checkpoint made there can be restored across nodes); fails when no node can.
    /// </summary>
    public ClusterNode NodeWithCriRestore(string? preferNot = null)
        => Nodes.Where(n => n.HasCriRestore).OrderBy(n => n.Name == preferNot).FirstOrDefault()
            ?? throw new InvalidOperationException($"no node of the local cluster in {RunDir} restores through CRI (containerd: {string.Join(", ", Nodes.Select(n => $"{n.Name} {n.ContainerdVersion}"))})");

    /// <summary>A node other than <paramref name="name"/> (the first in order); fails on a one-node cluster.</summary>
    public ClusterNode OtherNode(string name) => Nodes.FirstOrDefault(n => n.Name != name)
        ?? throw new InvalidOperationException($"the local cluster in {RunDir} has no node besides {name}");

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
    bool RestoreRuntime = false)
{
    /// <summary>containerd 1.7 has no restore through CRI; 2.x has it (a cluster.json without versions is all 2.x).</summary>
    public bool HasCriRestore => ContainerdVersion is not { } version || !version.StartsWith("1.", StringComparison.Ordinal);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ClusterInfo))]
internal sealed partial class ClusterInfoJsonContext : JsonSerializerContext;
