using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using k8s;

namespace PodMigrate.Kube.Serialization;

/// <summary>
/// The KubernetesClient package's own JSON contract (<see cref="KubernetesJson"/>: camelCase, nulls omitted, its
/// date-time and enum converters, its source-generated models first and reflection for the rest), as
/// <see cref="JsonTypeInfo{T}"/>s: so that a <see cref="Client.ResourceKind{T}"/> reads the package's models (V1Pod, V1Node…)
/// and types that embed them (a custom resource with a V1ObjectMeta, <see cref="Models.KubeList{T}"/> of either) exactly as
/// the package's typed calls do.
/// </summary>
public static class PackageJson
{
    /// <summary>The package's options (read-only once a type info is taken from them; the package keeps them in a private field).</summary>
    public static JsonSerializerOptions Options { get; } = Capture();

    public static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T));

    /// <summary>An object of the package's models as a JSON tree (nulls omitted), e.g. the "before" and "after" of a merge patch.</summary>
    public static JsonObject ToNode<T>(T value)
        => JsonSerializer.SerializeToNode(value, TypeInfo<T>()) as JsonObject
           ?? throw new JsonException($"a {typeof(T).Name} is not a JSON object");

    /// <summary>A JSON tree read as one of the package's models (fields the model does not name are dropped).</summary>
    public static T FromNode<T>(JsonNode node, string source)
        => KubeJson.Deserialize((node ?? throw new ArgumentNullException(nameof(node))).ToJsonString(), TypeInfo<T>(), source);

    private static JsonSerializerOptions Capture()
    {
        JsonSerializerOptions? options = null;
        // AddJsonOptions hands out the package's static options (it is how callers add converters); here they are only kept.
        KubernetesJson.AddJsonOptions(o => options = o);
        return options ?? throw new InvalidOperationException("KubernetesJson.AddJsonOptions did not hand out its options");
    }
}
