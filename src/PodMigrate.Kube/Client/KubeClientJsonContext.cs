using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>Everything the client puts on or takes off the wire; same conventions as <see cref="Serialization.KubeJsonContext"/>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(Pod))]
[JsonSerializable(typeof(KubeList<Pod>))]
[JsonSerializable(typeof(PodStatus))]
[JsonSerializable(typeof(Secret))]
[JsonSerializable(typeof(KubeList<Secret>))]
[JsonSerializable(typeof(Node))]
[JsonSerializable(typeof(KubeList<Node>))]
[JsonSerializable(typeof(NodeStatus))]
[JsonSerializable(typeof(Lease))]
[JsonSerializable(typeof(KubeList<Lease>))]
[JsonSerializable(typeof(KubeNamespace))]
[JsonSerializable(typeof(KubeList<KubeNamespace>))]
[JsonSerializable(typeof(CustomResource))]
[JsonSerializable(typeof(KubeList<CustomResource>))]
[JsonSerializable(typeof(KubeStatus))]
[JsonSerializable(typeof(DeleteOptions))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
public sealed partial class KubeClientJsonContext : JsonSerializerContext;
