using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// The OpenAPI documents kubectl reads before it writes, kept to what this server really does.
/// <para>
/// /openapi/v3 lists every served group-version; each one's document has the paths and operations of its resources with
/// x-kubernetes-group-version-kind. kubectl's `apply`/`create` (validation "Strict" by default) looks there for a
/// fieldValidation parameter on the kind's PATCH: it is advertised only for custom resources, which this server really
/// validates against their CRD's schema (<see cref="FieldValidation"/>); their schemas are published as components too.
/// </para>
/// <para>
/// For the built-in kinds there is no such parameter, so kubectl validates on the client against /openapi/v2 (protobuf).
/// That document is honest too: it defines no models, because this server has no schemas for its built-in kinds; kubectl
/// skips the kinds it finds no model for. So built-in manifests are not field-validated at all (kubectl still rejects
/// duplicate labels and annotations). No component of a built-in kind is published either: kubectl would otherwise
/// compute strategic merge patches from it instead of from its compiled-in types.
/// </para>
/// </summary>
internal static class OpenApi
{
    /// <summary>What kubectl asks for (Accept); the '@' is no valid media type, so the answer carries <see cref="V2ProtobufContentType"/>.</summary>
    public const string V2ProtobufMediaType = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

    public const string V2ProtobufContentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

    private const string Title = "Kubernetes";
    private const string Version = "v1.32.0-podmigrate";

    /// <summary>"api/v1", "apis/apps/v1": how /openapi/v3 names a group-version.</summary>
    public static string V3Key(string group, string version) => group.Length == 0 ? $"api/{version}" : $"apis/{group}/{version}";

    public static JsonObject V3Index(IReadOnlyList<ResourceType> types)
    {
        var paths = new JsonObject();
        foreach (var gv in types.GroupBy(t => (t.Group, t.Version)).OrderBy(g => V3Key(g.Key.Group, g.Key.Version), StringComparer.Ordinal))
        {
            var key = V3Key(gv.Key.Group, gv.Key.Version);
            var hash = Hash(V3Document(gv.ToList()));
            paths[key] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{key}?hash={hash}" };
        }
        return new JsonObject { ["paths"] = paths };
    }

    /// <summary>One group-version's document: the same for the same set of served types, so its hash makes a cache key.</summary>
    public static JsonObject V3Document(IReadOnlyList<ResourceType> types)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var type in types.OrderBy(t => t.Plural, StringComparer.Ordinal))
        {
            var root = type.Group.Length == 0 ? $"/api/{type.Version}" : $"/apis/{type.Group}/{type.Version}";
            var collection = type.Namespaced ? $"{root}/namespaces/{{namespace}}/{type.Plural}" : $"{root}/{type.Plural}";
            var scope = type.Namespaced ? "Namespaced" : "";
            var validates = FieldValidation.Validates(type);
            var schemaName = SchemaName(type);
            paths[collection] = PathItem(type.Namespaced, named: false,
                ("get", Operation(type, $"list{scope}{type.Kind}", "list", ListParameters(), null)),
                ("post", Operation(type, $"create{scope}{type.Kind}", "post", WriteParameters(validates), schemaName)),
                ("delete", Operation(type, $"deletecollection{scope}{type.Kind}", "deletecollection", ListParameters(), null)));
            paths[$"{collection}/{{name}}"] = PathItem(type.Namespaced, named: true,
                ("get", Operation(type, $"read{scope}{type.Kind}", "get", [], schemaName)),
                ("put", Operation(type, $"replace{scope}{type.Kind}", "put", WriteParameters(validates), schemaName)),
                ("patch", Operation(type, $"patch{scope}{type.Kind}", "patch", WriteParameters(validates), schemaName)),
                ("delete", Operation(type, $"delete{scope}{type.Kind}", "delete", [], null)));
            if (type.HasStatus)
            {
                paths[$"{collection}/{{name}}/status"] = PathItem(type.Namespaced, named: true,
                    ("get", Operation(type, $"read{scope}{type.Kind}Status", "get", [], schemaName)),
                    ("put", Operation(type, $"replace{scope}{type.Kind}Status", "put", WriteParameters(validates), schemaName)),
                    ("patch", Operation(type, $"patch{scope}{type.Kind}Status", "patch", WriteParameters(validates), schemaName)));
            }
            if (type.Namespaced)
            {
                paths[$"{root}/{type.Plural}"] = PathItem(namespaced: false, named: false,
                    ("get", Operation(type, $"list{type.Kind}ForAllNamespaces", "list", ListParameters(), null)));
            }
            if (type.Schema is { } schema && schemaName is not null)
            {
                var published = (JsonObject)schema.DeepClone();
                var properties = published["properties"] as JsonObject ?? (JsonObject)(published["properties"] = new JsonObject());
                properties["apiVersion"] ??= new JsonObject { ["type"] = "string" };
                properties["kind"] ??= new JsonObject { ["type"] = "string" };
                properties["metadata"] ??= new JsonObject { ["type"] = "object" };
                published["x-kubernetes-group-version-kind"] = new JsonArray(Gvk(type));
                schemas[schemaName] = published;
            }
        }
        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = Title, ["version"] = Version },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    /// <summary>
    /// An openapi_v2.Document (gnostic's OpenAPIv2.proto) with swagger "2.0", info, and empty paths and definitions:
    /// fields 1 (string), 2 (Info: title 1, version 2), 8 (Paths) and 9 (Definitions), in protobuf wire format.
    /// </summary>
    public static byte[] V2Protobuf()
    {
        var info = Concat(StringField(1, Title), StringField(2, Version));
        return Concat(StringField(1, "2.0"), LengthDelimited(2, info), LengthDelimited(8, []), LengthDelimited(9, []));
    }

    public static JsonObject V2Json() => new()
    {
        ["swagger"] = "2.0",
        ["info"] = new JsonObject { ["title"] = Title, ["version"] = Version },
        ["paths"] = new JsonObject(),
        ["definitions"] = new JsonObject(),
    };

    public static string Hash(JsonNode document)
        => Convert.ToHexString(SHA512.HashData(Encoding.UTF8.GetBytes(document.ToJsonString())));

    /// <summary>"io.podmigrate.v1alpha1.PodMigration" (reversed group, like the real server); null for built-ins: none is published.</summary>
    private static string? SchemaName(ResourceType type)
        => type.Schema is null ? null : $"{string.Join('.', type.Group.Split('.').Reverse())}.{type.Version}.{type.Kind}";

    private static JsonObject Gvk(ResourceType type) => new() { ["group"] = type.Group, ["version"] = type.Version, ["kind"] = type.Kind };

    private static JsonObject PathItem(bool namespaced, bool named, params (string Method, JsonObject Operation)[] operations)
    {
        var item = new JsonObject();
        foreach (var (method, operation) in operations)
        {
            item[method] = operation;
        }
        var parameters = new JsonArray();
        if (named)
        {
            parameters.Add(PathParameter("name", "name of the object"));
        }
        if (namespaced)
        {
            parameters.Add(PathParameter("namespace", "object name and auth scope, such as for teams and projects"));
        }
        item["parameters"] = parameters;
        return item;
    }

    private static JsonObject Operation(ResourceType type, string operationId, string action, JsonObject[] parameters, string? schemaName)
    {
        var response = new JsonObject { ["description"] = "OK" };
        if (schemaName is not null)
        {
            response["content"] = new JsonObject
            {
                ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["$ref"] = $"#/components/schemas/{schemaName}" } },
            };
        }
        // No requestBody on PATCH: kubectl would then take the patch strategy from this document rather than from its
        // compiled-in types, and this server publishes no schema (no patch merge keys) for the built-in kinds.
        return new JsonObject
        {
            ["operationId"] = operationId,
            ["parameters"] = new JsonArray(parameters.Select(p => (JsonNode?)p).ToArray()),
            ["responses"] = new JsonObject { ["200"] = response },
            ["x-kubernetes-action"] = action,
            ["x-kubernetes-group-version-kind"] = Gvk(type),
        };
    }

    private static JsonObject[] ListParameters() =>
    [
        QueryParameter("labelSelector", "A selector to restrict the list of returned objects by their labels."),
        QueryParameter("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
        QueryParameter("resourceVersion", "Where a watch starts."),
        QueryParameter("watch", "Watch for changes to the described resources.", "boolean"),
        QueryParameter("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    ];

    private static JsonObject[] WriteParameters(bool fieldValidation) => fieldValidation
        ?
        [
            QueryParameter("fieldManager", "Accepted and ignored: this server keeps no managed fields."),
            QueryParameter("fieldValidation",
                "Ignore, Warn (the default) or Strict: what to do with fields the kind's schema does not define."),
        ]
        : [QueryParameter("fieldManager", "Accepted and ignored: this server keeps no managed fields.")];

    private static JsonObject QueryParameter(string name, string description, string type = "string") => new()
    {
        ["name"] = name,
        ["in"] = "query",
        ["description"] = description,
        ["schema"] = new JsonObject { ["type"] = type, ["uniqueItems"] = true },
    };

    private static JsonObject PathParameter(string name, string description) => new()
    {
        ["name"] = name,
        ["in"] = "path",
        ["description"] = description,
        ["required"] = true,
        ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true },
    };

    private static byte[] StringField(int field, string value) => LengthDelimited(field, Encoding.UTF8.GetBytes(value));

    private static byte[] LengthDelimited(int field, byte[] payload)
        => Concat(Varint((ulong)((field << 3) | 2)), Varint((ulong)payload.Length), payload);

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];
}
