using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// Legacy discovery documents (/api, /api/v1, /apis, /apis/g, /apis/g/v). kubectl asks for aggregated discovery first and
/// falls back to these when the answer's Content-Type is plain application/json.
/// </summary>
internal static class Discovery
{
    private static readonly string[] AllVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    public static JsonObject CoreVersions(string serverAddress) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = serverAddress }),
    };

    public static JsonObject Groups(IReadOnlyList<ResourceType> types) => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray(types.Where(t => t.Group.Length > 0).GroupBy(t => t.Group).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (JsonNode?)Group(g.Key, g)).ToArray()),
    };

    public static JsonObject Group(string name, IEnumerable<ResourceType> types)
    {
        var versions = types.Select(t => t.Version).Distinct().Order(StringComparer.Ordinal).ToList();
        JsonObject Version(string v) => new() { ["groupVersion"] = $"{name}/{v}", ["version"] = v };
        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = name,
            ["versions"] = new JsonArray(versions.Select(v => (JsonNode?)Version(v)).ToArray()),
            ["preferredVersion"] = Version(versions[0]),
        };
    }

    public static JsonObject Resources(string groupVersion, IEnumerable<ResourceType> types)
    {
        var resources = new JsonArray();
        foreach (var type in types.OrderBy(t => t.Plural, StringComparer.Ordinal))
        {
            resources.Add(new JsonObject
            {
                ["name"] = type.Plural,
                ["singularName"] = type.Singular,
                ["namespaced"] = type.Namespaced,
                ["kind"] = type.Kind,
                ["verbs"] = new JsonArray(AllVerbs.Select(v => (JsonNode?)v).ToArray()),
                ["shortNames"] = new JsonArray(type.ShortNames.Select(v => (JsonNode?)v).ToArray()),
                ["categories"] = new JsonArray(type.Categories.Select(v => (JsonNode?)v).ToArray()),
            });
            if (type.HasStatus)
            {
                resources.Add(Subresource(type, "status", type.Kind, ["get", "patch", "update"]));
            }
            if (type == BuiltInTypes.Pods)
            {
                resources.Add(Subresource(type, "binding", "Binding", ["create"]));
                // kubectl drain looks for exactly this entry (name, kind, group and version) before it evicts; without it, it deletes.
                var eviction = Subresource(type, "eviction", "Eviction", ["create"]);
                eviction["group"] = BuiltInTypes.PolicyGroup;
                eviction["version"] = "v1";
                resources.Add(eviction);
            }
        }
        return new JsonObject { ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = groupVersion, ["resources"] = resources };
    }

    private static JsonObject Subresource(ResourceType type, string name, string kind, string[] verbs) => new()
    {
        ["name"] = $"{type.Plural}/{name}",
        ["singularName"] = "",
        ["namespaced"] = type.Namespaced,
        ["kind"] = kind,
        ["verbs"] = new JsonArray(verbs.Select(v => (JsonNode?)v).ToArray()),
    };

    public static JsonObject Version() => new()
    {
        ["major"] = "1",
        ["minor"] = "32",
        ["gitVersion"] = "v1.32.0-podmigrate",
        ["gitCommit"] = "",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2026-01-01T00:00:00Z",
        ["goVersion"] = "none (PodMigrate in-process API server, .NET)",
        ["compiler"] = "dotnet",
        ["platform"] = "linux/amd64",
    };
}
