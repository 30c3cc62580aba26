using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>What the client itself puts on or takes off the wire (lists, Status, custom resources); the package's models go through <see cref="Serialization.PackageJson"/>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(KubeNamespace))]
[JsonSerializable(typeof(KubeList<KubeNamespace>))]
[JsonSerializable(typeof(CustomResource))]
[JsonSerializable(typeof(KubeList<CustomResource>))]
[JsonSerializable(typeof(KubeStatus))]
[JsonSerializable(typeof(DeleteOptions))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
public sealed partial class KubeClientJsonContext : JsonSerializerContext;
