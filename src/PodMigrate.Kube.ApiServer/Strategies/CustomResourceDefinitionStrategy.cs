using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Strategies;

/// <summary>
/// CustomResourceDefinitions: a create needs a usable spec (group, plural, kind, a served version) and the name
/// plural.group; it is accepted and established at once (the status the apiextensions controllers would write). Serving
/// its resources (and removing them with it) is the registry's work.
/// </summary>
internal sealed class CustomResourceDefinitionStrategy() : ResourceStrategy(BuiltInTypes.CustomResourceDefinitions)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now)
    {
        var types = BuiltInTypes.FromCrd(obj);
        if (types.Count == 0)
        {
            throw PodMigrateException.InvalidArgument("CustomResourceDefinition is invalid: spec.group, spec.names.plural, spec.names.kind and a served version are required");
        }
        var expected = $"{types[0].Plural}.{types[0].Group}";
        if (obj["metadata"]?["name"]?.GetValue<string>() != expected)
        {
            throw PodMigrateException.InvalidArgument($"CustomResourceDefinition is invalid: metadata.name: must be spec.names.plural+\".\"+spec.group ({expected})");
        }
        var time = ObjectStore.Timestamp(now);
        obj["status"] = new JsonObject
        {
            ["acceptedNames"] = obj["spec"]!["names"]!.DeepClone(),
            ["storedVersions"] = new JsonArray(types.Select(t => (JsonNode?)t.Version).ToArray()),
            ["conditions"] = new JsonArray(
                new JsonObject { ["type"] = "NamesAccepted", ["status"] = "True", ["reason"] = "NoConflicts", ["message"] = "no conflicts found", ["lastTransitionTime"] = time },
                new JsonObject { ["type"] = "Established", ["status"] = "True", ["reason"] = "InitialNamesAccepted", ["message"] = "the initial names have been accepted", ["lastTransitionTime"] = time }),
        };
    }
}
