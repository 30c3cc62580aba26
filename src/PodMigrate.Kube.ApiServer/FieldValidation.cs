using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>The fieldValidation query parameter: what a write does with fields the server does not know.</summary>
internal enum FieldValidationMode
{
    /// <summary>Store them silently.</summary>
    Ignore,

    /// <summary>Store them and answer with a Warning header per field (the real server's default when the parameter is absent).</summary>
    Warn,

    /// <summary>Reject the write: 400 BadRequest "strict decoding error: unknown field …".</summary>
    Strict,
}

/// <summary>A write refused by strict field validation (400 BadRequest at the edge).</summary>
internal sealed class StrictDecodingException(string message) : Exception(message);

/// <summary>
/// Server-side field validation, for the kinds whose fields this server knows: custom resources, against their CRD's
/// structural openAPIV3Schema (properties, items, additionalProperties, x-kubernetes-preserve-unknown-fields,
/// x-kubernetes-embedded-resource) plus the fields of ObjectMeta. Built-in kinds are stored as documents without a
/// schema: nothing in them is checked, and the OpenAPI documents do not advertise fieldValidation for them, so kubectl
/// does not rely on it. Types, formats, enums and required fields are not validated (the real server would answer 422).
/// </summary>
internal static class FieldValidation
{
    /// <summary>metav1.ObjectMeta's fields (what the real server's strict decoding of metadata accepts).</summary>
    private static readonly HashSet<string> ObjectMetaFields = new(StringComparer.Ordinal)
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    };

    public static FieldValidationMode Parse(string? value) => value switch
    {
        "Ignore" => FieldValidationMode.Ignore,
        "Strict" => FieldValidationMode.Strict,
        "Warn" or null or "" => FieldValidationMode.Warn,
        _ => throw Core.Errors.PodMigrateException.InvalidArgument($"fieldValidation must be Ignore, Warn or Strict, not \"{value}\""),
    };

    /// <summary>Whether this server validates the fields of <paramref name="type"/> (and so may advertise fieldValidation for it).</summary>
    public static bool Validates(ResourceType type) => type.Schema is not null;

    /// <summary>The paths of the fields of <paramref name="obj"/> that its kind does not define ("spec.podNme"), in document order.</summary>
    public static IReadOnlyList<string> UnknownFields(ResourceType type, JsonObject obj)
    {
        var unknown = new List<string>();
        if (type.Schema is { } schema)
        {
            Walk(obj, schema, "", unknown, embeddedResource: true);
        }
        return unknown;
    }

    /// <summary>
    /// Applies <paramref name="mode"/> to <paramref name="obj"/>: throws on unknown fields when Strict, adds them to
    /// <paramref name="warnings"/> when Warn.
    /// </summary>
    public static void Check(ResourceType type, JsonObject obj, FieldValidationMode mode, List<string> warnings)
    {
        if (mode == FieldValidationMode.Ignore)
        {
            return;
        }
        var unknown = UnknownFields(type, obj);
        if (unknown.Count == 0)
        {
            return;
        }
        if (mode == FieldValidationMode.Strict)
        {
            throw new StrictDecodingException(
                $"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: strict decoding error: {string.Join(", ", unknown.Select(u => $"unknown field \"{u}\""))}");
        }
        warnings.AddRange(unknown.Select(u => $"unknown field \"{u}\""));
    }

    private static void Walk(JsonNode? node, JsonObject schema, string path, List<string> unknown, bool embeddedResource)
    {
        var preserve = schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
        switch (node)
        {
            case JsonObject obj:
            {
                var properties = schema["properties"] as JsonObject;
                var additional = schema["additionalProperties"];
                var embedded = embeddedResource || schema["x-kubernetes-embedded-resource"]?.GetValue<bool>() == true;
                foreach (var (key, value) in obj)
                {
                    var childPath = path.Length == 0 ? key : $"{path}.{key}";
                    if (properties?[key] is JsonObject propertySchema)
                    {
                        Walk(value, propertySchema, childPath, unknown, embeddedResource: false);
                    }
                    else if (embedded && key is "apiVersion" or "kind")
                    {
                        continue;
                    }
                    else if (embedded && key == "metadata")
                    {
                        if (value is JsonObject metadata)
                        {
                            unknown.AddRange(metadata.Select(m => m.Key).Where(k => !ObjectMetaFields.Contains(k)).Select(k => $"{childPath}.{k}"));
                        }
                    }
                    else if (additional is JsonObject additionalSchema)
                    {
                        Walk(value, additionalSchema, childPath, unknown, embeddedResource: false);
                    }
                    else if (!preserve && !(additional is JsonValue allowed && allowed.GetValue<bool>()))
                    {
                        unknown.Add(childPath);
                    }
                }
                break;
            }
            case JsonArray array when schema["items"] is JsonObject itemSchema:
                for (var i = 0; i < array.Count; i++)
                {
                    Walk(array[i], itemSchema, $"{path}[{i}]", unknown, embeddedResource: false);
                }
                break;
        }
    }
}
