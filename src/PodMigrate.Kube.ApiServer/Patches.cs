using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer;

/// <summary>The patch formats a controller and kubectl send: JSON merge patch, strategic merge patch (built-in merge keys), JSON patch.</summary>
internal static class Patches
{
    /// <summary>List fields of the built-in kinds that merge by a key instead of being replaced (patchMergeKey in the Go types).</summary>
    private static readonly Dictionary<string, string> MergeKeys = new(StringComparer.Ordinal)
    {
        ["containers"] = "name",
        ["initContainers"] = "name",
        ["ephemeralContainers"] = "name",
        ["volumes"] = "name",
        ["env"] = "name",
        ["volumeMounts"] = "mountPath",
        ["volumeDevices"] = "devicePath",
        ["ports"] = "containerPort",
        ["conditions"] = "type",
        ["containerStatuses"] = "name",
        ["initContainerStatuses"] = "name",
        ["ownerReferences"] = "uid",
        ["imagePullSecrets"] = "name",
        ["tolerations"] = "key",
        ["addresses"] = "type",
        ["hostAliases"] = "ip",
    };

    /// <summary>Lists of scalars that merge as sets (patchStrategy merge).</summary>
    private static readonly HashSet<string> MergedScalarLists = new(StringComparer.Ordinal) { "finalizers" };

    public static JsonNode? Apply(JsonObject target, string contentType, JsonNode? patch)
    {
        var mediaType = contentType.Split(';')[0].Trim();
        return mediaType switch
        {
            "application/merge-patch+json" => MergePatch(target, patch),
            "application/strategic-merge-patch+json" => StrategicMerge(target, patch, strategic: true),
            "application/json-patch+json" => JsonPatch(target, patch),
            "application/apply-patch+yaml" => throw new PodMigrateException(ErrorKind.Unimplemented, "server-side apply is not supported by this API server; use client-side kubectl apply"),
            _ => throw new PodMigrateException(ErrorKind.Unimplemented, $"unsupported patch type {mediaType}"),
        };
    }

    /// <summary>RFC 7386.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch) => StrategicMerge(target, patch, strategic: false);

    private static JsonNode? StrategicMerge(JsonNode? target, JsonNode? patch, bool strategic)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }
        if (strategic && patchObject["$patch"]?.GetValue<string>() == "replace")
        {
            var replaced = (JsonObject)patchObject.DeepClone();
            replaced.Remove("$patch");
            return replaced;
        }
        var result = target as JsonObject is { } t ? (JsonObject)t.DeepClone() : [];
        foreach (var (key, value) in patchObject)
        {
            if (strategic && key.StartsWith('$'))
            {
                // $setElementOrder/…, $retainKeys, $deleteFromPrimitiveList/… only order or prune; the merge below is what counts.
                if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal) && value is JsonArray removals && result[key[25..]] is JsonArray list)
                {
                    var drop = removals.Select(r => r?.ToJsonString()).ToHashSet(StringComparer.Ordinal);
                    result[key[25..]] = new JsonArray(list.Where(i => !drop.Contains(i?.ToJsonString())).Select(i => i?.DeepClone()).ToArray());
                }
                continue;
            }
            if (value is null)
            {
                result.Remove(key);
            }
            else if (strategic && value is JsonArray patchList && result[key] is JsonArray current)
            {
                result[key] = MergeList(key, current, patchList);
            }
            else
            {
                result[key] = StrategicMerge(result[key], value, strategic);
            }
        }
        return result;
    }

    private static JsonArray MergeList(string field, JsonArray current, JsonArray patch)
    {
        if (MergedScalarLists.Contains(field))
        {
            var merged = current.Select(n => n?.DeepClone()).ToList();
            foreach (var item in patch)
            {
                if (!merged.Exists(m => JsonNode.DeepEquals(m, item)))
                {
                    merged.Add(item?.DeepClone());
                }
            }
            return new JsonArray(merged.ToArray());
        }
        if (!MergeKeys.TryGetValue(field, out var mergeKey))
        {
            return (JsonArray)patch.DeepClone();
        }
        var items = current.Select(n => n?.DeepClone()).ToList();
        foreach (var item in patch.OfType<JsonObject>())
        {
            var key = item[mergeKey]?.ToJsonString();
            var index = items.FindIndex(i => i is JsonObject o && o[mergeKey]?.ToJsonString() == key);
            if (item["$patch"]?.GetValue<string>() == "delete")
            {
                if (index >= 0)
                {
                    items.RemoveAt(index);
                }
            }
            else if (index >= 0)
            {
                items[index] = StrategicMerge(items[index], item, strategic: true);
            }
            else
            {
                items.Add(StrategicMerge(null, item, strategic: true));
            }
        }
        return new JsonArray(items.ToArray());
    }

    /// <summary>RFC 6902: add, remove, replace, test (what controllers use for guarded edits such as finalizer removal).</summary>
    private static JsonNode JsonPatch(JsonObject target, JsonNode? patch)
    {
        if (patch is not JsonArray operations)
        {
            throw PodMigrateException.InvalidArgument("a JSON patch is an array of operations");
        }
        JsonNode document = target.DeepClone();
        foreach (var operation in operations.OfType<JsonObject>())
        {
            var op = operation["op"]?.GetValue<string>();
            var path = operation["path"]?.GetValue<string>() ?? throw PodMigrateException.InvalidArgument("JSON patch operation without a path");
            var (parent, last) = Resolve(document, path);
            switch (op)
            {
                case "add":
                    Set(parent, last, operation["value"]?.DeepClone(), insert: true);
                    break;
                case "replace":
                    _ = Get(parent, last, path);
                    Set(parent, last, operation["value"]?.DeepClone(), insert: false);
                    break;
                case "remove":
                    _ = Get(parent, last, path);
                    if (parent is JsonObject o)
                    {
                        o.Remove(last);
                    }
                    else
                    {
                        ((JsonArray)parent).RemoveAt(Index(last, ((JsonArray)parent).Count - 1));
                    }
                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(parent, last, path), operation["value"]))
                    {
                        throw new PodMigrateException(ErrorKind.InvalidArgument, $"the JSON patch test at {path} failed");
                    }
                    break;
                default:
                    throw new PodMigrateException(ErrorKind.Unimplemented, $"unsupported JSON patch operation {op}");
            }
        }
        return document;
    }

    private static (JsonNode Parent, string Last) Resolve(JsonNode document, string pointer)
    {
        var parts = pointer.Split('/').Skip(1).Select(p => p.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
        if (parts.Length == 0)
        {
            throw PodMigrateException.InvalidArgument("a JSON patch cannot replace the whole object");
        }
        var node = document;
        foreach (var part in parts[..^1])
        {
            node = Get(node, part, pointer) ?? throw PodMigrateException.InvalidArgument($"JSON patch path {pointer} goes through null");
        }
        return (node, parts[^1]);
    }

    private static JsonNode? Get(JsonNode parent, string part, string pointer) => parent switch
    {
        JsonObject o when o.TryGetPropertyValue(part, out var child) => child,
        JsonArray a when int.TryParse(part, out var i) && i >= 0 && i < a.Count => a[i],
        _ => throw PodMigrateException.InvalidArgument($"JSON patch path {pointer} does not exist"),
    };

    private static void Set(JsonNode parent, string part, JsonNode? value, bool insert)
    {
        switch (parent)
        {
            case JsonObject o:
                o[part] = value;
                break;
            case JsonArray a when part == "-" && insert:
                a.Add(value);
                break;
            case JsonArray a when insert:
                a.Insert(Index(part, a.Count), value);
                break;
            case JsonArray a:
                a[Index(part, a.Count - 1)] = value;
                break;
            default:
                throw PodMigrateException.InvalidArgument($"JSON patch cannot set {part} on a scalar");
        }
    }

    private static int Index(string part, int max)
        => int.TryParse(part, out var i) && i >= 0 && i <= max ? i : throw PodMigrateException.InvalidArgument($"JSON patch index {part} out of range");
}
