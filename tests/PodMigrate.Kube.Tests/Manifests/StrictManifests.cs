using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests.Manifests;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NamespaceResource))]
[JsonSerializable(typeof(ServiceAccount))]
[JsonSerializable(typeof(ClusterRole))]
[JsonSerializable(typeof(Role))]
[JsonSerializable(typeof(ClusterRoleBinding))]
[JsonSerializable(typeof(RoleBinding))]
[JsonSerializable(typeof(PersistentVolume))]
[JsonSerializable(typeof(RuntimeClass))]
[JsonSerializable(typeof(PersistentVolumeClaim))]
[JsonSerializable(typeof(Deployment))]
[JsonSerializable(typeof(DaemonSet))]
[JsonSerializable(typeof(Pod))]
[JsonSerializable(typeof(CustomResourceDefinition))]
[JsonSerializable(typeof(Kustomization))]
[JsonSerializable(typeof(Service))]
[JsonSerializable(typeof(ValidatingWebhookConfiguration))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;

/// <summary>One document of a manifest file, read strictly: its typed object, or for a custom resource its JSON.</summary>
public sealed record ManifestDocument(string File, int Index, string ApiVersion, string Kind, string? Name, string? Namespace, object Value, JsonElement Json)
{
    /// <summary>How errors name it: "deploy/50-agent-daemonset.yaml document 1 (DaemonSet podmigrate-agent)".</summary>
    public string Describe => $"{File} document {Index} ({Kind} {Name ?? "<no name>"})";

    public T As<T>() => Value is T typed ? typed : throw new InvalidCastException($"{Describe} is a {Value.GetType().Name}, not a {typeof(T).Name}");
}

/// <summary>
/// Reads manifests through the project's KubeYaml (YamlDotNet → Kubernetes JSON) into the strict models of
/// ManifestModels.cs. A field that the document's kind does not define, anywhere in it, is an error; so are a wrong type
/// and a missing required field. Every error names the file, the document (index, kind, name) and the field path.
/// Custom resources are checked against their CRD's schema with the API server's own field validation.
/// </summary>
internal static class StrictManifests
{
    private static readonly Dictionary<(string ApiVersion, string Kind), JsonTypeInfo> Kinds = new()
    {
        [("v1", "Namespace")] = ManifestJsonContext.Default.NamespaceResource,
        [("v1", "ServiceAccount")] = ManifestJsonContext.Default.ServiceAccount,
        [("v1", "PersistentVolume")] = ManifestJsonContext.Default.PersistentVolume,
        [("v1", "PersistentVolumeClaim")] = ManifestJsonContext.Default.PersistentVolumeClaim,
        [("v1", "Pod")] = ManifestJsonContext.Default.Pod,
        [("rbac.authorization.k8s.io/v1", "ClusterRole")] = ManifestJsonContext.Default.ClusterRole,
        [("rbac.authorization.k8s.io/v1", "Role")] = ManifestJsonContext.Default.Role,
        [("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")] = ManifestJsonContext.Default.ClusterRoleBinding,
        [("rbac.authorization.k8s.io/v1", "RoleBinding")] = ManifestJsonContext.Default.RoleBinding,
        [("apps/v1", "Deployment")] = ManifestJsonContext.Default.Deployment,
        [("apps/v1", "DaemonSet")] = ManifestJsonContext.Default.DaemonSet,
        [("node.k8s.io/v1", "RuntimeClass")] = ManifestJsonContext.Default.RuntimeClass,
        [("apiextensions.k8s.io/v1", "CustomResourceDefinition")] = ManifestJsonContext.Default.CustomResourceDefinition,
        [("kustomize.config.k8s.io/v1beta1", "Kustomization")] = ManifestJsonContext.Default.Kustomization,
        [("v1", "Service")] = ManifestJsonContext.Default.Service,
        [("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")] = ManifestJsonContext.Default.ValidatingWebhookConfiguration,
    };

    /// <summary>
    /// Every document of <paramref name="text"/>. <paramref name="customResources"/> are the kinds that CRDs define, by
    /// (apiVersion, kind); see <see cref="CustomResourceTypes"/>.
    /// </summary>
    public static IReadOnlyList<ManifestDocument> Read(string text, string file, IReadOnlyDictionary<(string, string), ResourceType> customResources)
    {
        var documents = new List<ManifestDocument>();
        var jsonDocuments = KubeYaml.ToJsonDocuments(text, file);
        for (var i = 0; i < jsonDocuments.Count; i++)
        {
            documents.Add(ReadDocument(jsonDocuments[i], file, i + 1, customResources));
        }
        return documents;
    }

    /// <summary>
    /// The custom resource kinds that the CRDs in <paramref name="files"/> define, as the API server would serve them. Read
    /// leniently (only YAML must be valid): a broken CRD fails its own file's strict reading, not every custom resource's.
    /// </summary>
    public static IReadOnlyDictionary<(string, string), ResourceType> CustomResourceTypes(IEnumerable<string> files)
    {
        var types = new Dictionary<(string, string), ResourceType>();
        foreach (var file in files)
        {
            foreach (var json in KubeYaml.ToJsonDocuments(File.ReadAllText(file), file))
            {
                if (System.Text.Json.Nodes.JsonNode.Parse(json) is System.Text.Json.Nodes.JsonObject { } obj
                    && obj["apiVersion"]?.ToString() == "apiextensions.k8s.io/v1" && obj["kind"]?.ToString() == "CustomResourceDefinition")
                {
                    foreach (var type in BuiltInTypes.FromCrd(obj))
                    {
                        types[(type.ApiVersion, type.Kind)] = type;
                    }
                }
            }
        }
        return types;
    }

    private static ManifestDocument ReadDocument(byte[] json, string file, int index, IReadOnlyDictionary<(string, string), ResourceType> customResources)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Invalid($"{file} document {index}: a manifest must be a mapping, not a {root.ValueKind}");
        }
        var apiVersion = StringOf(root, "apiVersion");
        var kind = StringOf(root, "kind");
        var metadata = root.TryGetProperty("metadata", out var m) && m.ValueKind == JsonValueKind.Object ? m : default;
        var name = metadata.ValueKind == JsonValueKind.Object ? StringOf(metadata, "name") : null;
        var ns = metadata.ValueKind == JsonValueKind.Object ? StringOf(metadata, "namespace") : null;
        var describe = $"{file} document {index} ({kind ?? "<no kind>"} {name ?? "<no name>"})";
        if (apiVersion is null || kind is null)
        {
            throw Invalid($"{describe}: apiVersion and kind are required");
        }

        if (customResources.TryGetValue((apiVersion, kind), out var custom))
        {
            var unknown = FieldValidation.UnknownFields(custom, System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject());
            if (unknown.Count > 0)
            {
                throw Invalid($"{describe}: {Fields(unknown)} (not in the {custom.Kind} schema of CRD {custom.QualifiedName})");
            }
            return new ManifestDocument(file, index, apiVersion, kind, name, ns, root.Clone(), root.Clone());
        }
        if (!Kinds.TryGetValue((apiVersion, kind), out var typeInfo))
        {
            throw Invalid($"{describe}: no strict model for apiVersion {apiVersion} kind {kind} (add one to ManifestModels.cs, or its CRD)");
        }

        var errors = new List<string>();
        UnknownFields(root, typeInfo, "", errors);
        if (errors.Count > 0)
        {
            throw Invalid($"{describe}: {Fields(errors)}");
        }
        object typed;
        try
        {
            typed = JsonSerializer.Deserialize(json, typeInfo) ?? throw Invalid($"{describe}: the document is null");
        }
        catch (JsonException e)
        {
            var path = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : e.Path ?? "$";
            var message = e.Message.IndexOf(" Path:", StringComparison.Ordinal) is var end and > 0 ? e.Message[..end] : e.Message;
            throw new PodMigrateException(ErrorKind.InvalidArgument, $"{describe}: field {path}: {message}", e);
        }
        return new ManifestDocument(file, index, apiVersion, kind, name, ns, typed, root.Clone());
    }

    /// <summary>Walks the JSON along the model's contract: a property the contract lacks (extension data does not count) is unknown.</summary>
    private static void UnknownFields(JsonElement element, JsonTypeInfo info, string path, List<string> unknown)
    {
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Object when element.ValueKind == JsonValueKind.Object:
                var properties = info.Properties.Where(p => !p.IsExtensionData).ToDictionary(p => p.Name, StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    var childPath = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                    if (properties.TryGetValue(property.Name, out var known))
                    {
                        UnknownFields(property.Value, info.Options.GetTypeInfo(known.PropertyType), childPath, unknown);
                    }
                    else
                    {
                        unknown.Add(childPath);
                    }
                }
                break;
            case JsonTypeInfoKind.Enumerable when element.ValueKind == JsonValueKind.Array && info.ElementType is { } itemType:
                var itemInfo = info.Options.GetTypeInfo(itemType);
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    UnknownFields(item, itemInfo, $"{path}[{index++}]", unknown);
                }
                break;
            case JsonTypeInfoKind.Dictionary when element.ValueKind == JsonValueKind.Object && info.ElementType is { } valueType:
                var valueInfo = info.Options.GetTypeInfo(valueType);
                foreach (var entry in element.EnumerateObject())
                {
                    UnknownFields(entry.Value, valueInfo, $"{path}[{entry.Name}]", unknown);
                }
                break;
            default:
                // Scalars, JsonElement (deliberately open) and wrong JSON types: deserialization reports the latter.
                break;
        }
    }

    private static string Fields(IEnumerable<string> paths) => string.Join(", ", paths.Select(p => $"unknown field \"{p}\""));

    private static string? StringOf(JsonElement element, string property)
        => element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static PodMigrateException Invalid(string message) => PodMigrateException.InvalidArgument(message);
}
