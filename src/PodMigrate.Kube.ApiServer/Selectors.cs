using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer;

/// <summary>Label and field selectors as the API server parses them (equality, set-based, existence).</summary>
internal sealed partial class Selector
{
    private readonly List<Func<JsonObject, bool>> _terms;

    private Selector(List<Func<JsonObject, bool>> terms) => _terms = terms;

    public static Selector Everything { get; } = new([]);

    public bool Matches(JsonObject obj) => _terms.TrueForAll(term => term(obj));

    /// <summary>key=v, key==v, key!=v, key in (a,b), key notin (a,b), key, !key. As in Kubernetes, an empty element of a set is the empty value: "key in (,a)" matches key="".</summary>
    public static Selector ParseLabels(string? text)
    {
        var terms = new List<Func<JsonObject, bool>>();
        foreach (var raw in SplitTopLevel(text))
        {
            var term = raw.Trim();
            Match m;
            if ((m = SetTerm().Match(term)).Success)
            {
                var key = m.Groups[1].Value;
                var values = m.Groups[3].Value.Split(',', StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
                var negate = m.Groups[2].Value == "notin";
                terms.Add(o => Label(o, key) is { } v ? values.Contains(v) != negate : negate);
            }
            else if ((m = EqualityTerm().Match(term)).Success)
            {
                var key = m.Groups[1].Value;
                var value = m.Groups[3].Value.Trim();
                var negate = m.Groups[2].Value == "!=";
                terms.Add(o => (Label(o, key) == value) != negate);
            }
            else if (term.StartsWith('!') && KeyOnly().IsMatch(term[1..]))
            {
                var key = term[1..];
                terms.Add(o => Label(o, key) is null);
            }
            else if (KeyOnly().IsMatch(term))
            {
                terms.Add(o => Label(o, term) is not null);
            }
            else
            {
                throw PodMigrateException.InvalidArgument($"unable to parse requirement: invalid label selector term \"{term}\"");
            }
        }
        return new Selector(terms);
    }

    /// <summary>path=v, path==v, path!=v over any dotted field (metadata.name, spec.nodeName, status.phase, involvedObject.uid…).</summary>
    public static Selector ParseFields(string? text)
    {
        var terms = new List<Func<JsonObject, bool>>();
        foreach (var raw in SplitTopLevel(text))
        {
            var m = EqualityTerm().Match(raw.Trim());
            if (!m.Success)
            {
                throw PodMigrateException.InvalidArgument($"invalid field selector term \"{raw}\"");
            }
            var path = m.Groups[1].Value;
            var value = m.Groups[3].Value.Trim();
            var negate = m.Groups[2].Value == "!=";
            terms.Add(o => (Field(o, path) == value) != negate);
        }
        return new Selector(terms);
    }

    /// <summary>A field as a selector compares it: scalars as their text, a missing field as "".</summary>
    public static string Field(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split('.'))
        {
            node = node is JsonObject o && o.TryGetPropertyValue(part, out var child) ? child : null;
        }
        return node switch
        {
            null => "",
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            _ => node.ToJsonString(),
        };
    }

    private static string? Label(JsonObject obj, string key)
        => obj["metadata"]?["labels"] is JsonObject labels && labels[key] is JsonValue v ? v.GetValue<string>() : null;

    private static IEnumerable<string> SplitTopLevel(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            yield break;
        }
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }
        yield return text[start..];
    }

    [GeneratedRegex(@"^([A-Za-z0-9./_-]+)\s+(in|notin)\s*\((.*)\)$")]
    private static partial Regex SetTerm();

    [GeneratedRegex(@"^([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*(.*)$")]
    private static partial Regex EqualityTerm();

    [GeneratedRegex(@"^[A-Za-z0-9./_-]+$")]
    private static partial Regex KeyOnly();
}
