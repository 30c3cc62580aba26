using System.Text.Json.Nodes;

namespace PodMigrate.Kube.Selectors;

/// <summary>
/// metav1.LabelSelector (matchLabels and matchExpressions with In, NotIn, Exists, DoesNotExist) over an object's labels,
/// as the API server's disruption controller, eviction subresource and webhook namespace/object selectors, and the
/// controller's eviction decision (a PodDisruptionBudget's selector) use it.
/// An empty selector matches everything; a null one matches nothing where the caller says so (a PDB without a selector).
/// </summary>
public static class LabelSelectors
{
    public static bool Matches(JsonObject selector, JsonObject? labels)
        => Matches(selector, key => labels?[key] is JsonValue v ? v.GetValue<string>() : null);

    public static bool Matches(JsonObject selector, IReadOnlyDictionary<string, string>? labels)
        => Matches(selector, key => labels is not null && labels.TryGetValue(key, out var v) ? v : null);

    /// <summary>The selector over labels looked up by <paramref name="label"/> (null: the object has no such label).</summary>
    public static bool Matches(JsonObject selector, Func<string, string?> label)
    {
        ArgumentNullException.ThrowIfNull(selector);
        ArgumentNullException.ThrowIfNull(label);
        if (selector["matchLabels"] is JsonObject matchLabels)
        {
            foreach (var (key, value) in matchLabels)
            {
                if (label(key) != value?.GetValue<string>())
                {
                    return false;
                }
            }
        }
        foreach (var expression in (selector["matchExpressions"] as JsonArray)?.OfType<JsonObject>() ?? [])
        {
            var key = expression["key"]?.GetValue<string>() ?? "";
            var values = (expression["values"] as JsonArray)?.Select(v => v?.GetValue<string>()).ToHashSet(StringComparer.Ordinal) ?? [];
            var actual = label(key);
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
