using System.Text.Json.Serialization;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Serialization;

/// <summary>The Kubernetes wire format: camelCase, nulls omitted, unknown fields kept in ExtensionData.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(Pod))]
[JsonSerializable(typeof(ObjectMeta))]
[JsonSerializable(typeof(Container))]
[JsonSerializable(typeof(List<ContainerPort>))]
public sealed partial class KubeJsonContext : JsonSerializerContext;
