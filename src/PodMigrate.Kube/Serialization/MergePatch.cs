using System.Text.Json.Nodes;

namespace PodMigrate.Kube.Serialization;

/// <summary>
/// RFC 7386 JSON merge patches computed from two states of one object: how PodMigrate writes to objects it does not own
/// (a user's pod), so that it sends only what it changed instead of replacing the whole object as its models see it.
/// </summary>
public static class MergePatch
{
    /// <summary>
    /// The patch that turns <paramref name="before"/> into <paramref name="after"/>: changed members as they are now, members
    /// that went as null, objects recursively, lists whole (a merge patch cannot say less). Null when nothing changed.
    /// </summary>
    public static JsonObject? Diff(JsonObject before, JsonObject after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var patch = new JsonObject();
        foreach (var (name, value) in after)
        {
            if (!before.TryGetPropertyValue(name, out var old))
            {
                if (value is not null)
                {
                    patch[name] = value.DeepClone();
                }
            }
            else if (value is JsonObject now && old is JsonObject then)
            {
                if (Diff(then, now) is { } nested)
                {
                    patch[name] = nested;
                }
            }
            else if (!JsonNode.DeepEquals(old, value))
            {
                patch[name] = value?.DeepClone();
            }
        }
        foreach (var (name, value) in before)
        {
            if (value is not null && !after.ContainsKey(name))
            {
                patch[name] = null;
            }
        }
        return patch.Count == 0 ? null : patch;
    }

    /// <summary>
    /// <see cref="Diff"/> guarded by the resourceVersion the change was computed from: the server refuses it with 409 Conflict
    /// if the object changed since (as it would a replace), so a list replaced whole cannot drop someone else's change.
    /// </summary>
    public static string Guarded(JsonObject before, JsonObject after, string? resourceVersion)
    {
        var patch = Diff(before, after) ?? [];
        if (!string.IsNullOrEmpty(resourceVersion))
        {
            if (patch["metadata"] is not JsonObject metadata)
            {
                patch["metadata"] = metadata = [];
            }
            metadata["resourceVersion"] = resourceVersion;
        }
        return patch.ToJsonString();
    }
}
