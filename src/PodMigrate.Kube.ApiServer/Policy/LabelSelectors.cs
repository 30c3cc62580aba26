using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer.Policy;

/// <summary>
/// metav1.LabelSelector (matchLabels and matchExpressions with In, NotIn, Exists, DoesNotExist) over an object's labels,
/// as the disruption controller, the eviction subresource and webhook namespace/object selectors use it.
/// An empty selector matches everything; a null one matches nothing where the caller says so (a PDB without a selector).
/// </summary>
internal static class LabelSelectors
{
    public static bool Matches(JsonObject selector, JsonObject? labels)
    {
        ArgumentNullException.ThrowIfNull(selector);
        string? Label(string key) => labels?[key] is JsonValue v ? v.GetValue<string>() : null;
        if (selector["matchLabels"] is JsonObject matchLabels)
        {
            foreach (var (key, value) in matchLabels)
            {
                if (Label(key) != value?.GetValue<string>())
                {
                    return false;
                }
            }
        }
        foreach (var expression in (selector["matchExpressions"] as JsonArray)?.OfType<JsonObject>() ?? [])
        {
            var key = expression["key"]?.GetValue<string>() ?? "";
            var values = (expression["values"] as JsonArray)?.Select(v => v?.GetValue<string>()).ToHashSet(StringComparer.Ordinal) ?? [];
            var actual = Label(key);
            var holds = expression["operator"]?.GetValue<string>() switch
            {
                "In" => actual is not null && values.Contains(actual),
                "NotIn" => actual is null || !values.Contains(actual),
                "Exists" => actual is not null,
                "DoesNotExist" => actual is null,
                _ => false,
            };
            if (!holds)
            {
                return false;
            }
        }
        return true;
    }
}
