using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PodMigrate.Kube.ApiServer;

namespace PodMigrate.Kube.Tests.Properties;

/// <summary>Label selectors built from a label set match exactly what the set says they should.</summary>
[Trait("Category", "Unit")]
public sealed class SelectorProperties
{
    private static readonly string[] LabelKeys = ["app", "tier", "example.com/role", "a.b_c-d", "x"];
    private static readonly string[] LabelValues = ["web", "db", "", "v1.2", "a_b-c", "X"];

    private static Gen<Dictionary<string, string>> LabelSets()
        => Gen.SubListOf(LabelKeys).SelectMany(keys => Gen.Elements(LabelValues).ListOf(keys.Count)
            .Select(values => keys.Select((k, i) => (k, values[i])).ToDictionary(p => p.k, p => p.Item2, StringComparer.Ordinal)));

    private static JsonObject ObjectWith(Dictionary<string, string> labels)
    {
        var map = new JsonObject();
        foreach (var (k, v) in labels)
        {
            map[k] = v;
        }

        return new JsonObject { ["metadata"] = new JsonObject { ["name"] = "o", ["labels"] = map } };
    }

    private static string EqualitySelector(Dictionary<string, string> labels, string op)
        => string.Join(',', labels.Select(l => $"{l.Key}{op}{l.Value}"));

    [Property(MaxTest = 500)]
    public Property A_selector_of_a_label_set_matches_any_object_with_those_labels()
        => Prop.ForAll(LabelSets().Zip(LabelSets()).ToArbitrary(), sets =>
        {
            // The object has the selector's labels and maybe more.
            var labels = new Dictionary<string, string>(sets.Item2, StringComparer.Ordinal);
            foreach (var (k, v) in sets.Item1)
            {
                labels[k] = v;
            }

            var obj = ObjectWith(labels);
            return Selector.ParseLabels(EqualitySelector(sets.Item1, "=")).Matches(obj)
                && Selector.ParseLabels(EqualitySelector(sets.Item1, "==")).Matches(obj)
                && Selector.ParseLabels(string.Join(',', sets.Item1.Select(l => $"{l.Key} in ({l.Value},other)"))).Matches(obj)
                && Selector.ParseLabels(string.Join(',', sets.Item1.Keys)).Matches(obj);
        });

    [Property(MaxTest = 500)]
    public Property A_selector_of_a_label_set_matches_an_object_only_if_it_has_every_label()
        => Prop.ForAll(LabelSets().Zip(LabelSets()).ToArbitrary(), sets =>
        {
            var (selector, labels) = sets;
            var expected = selector.All(l => labels.TryGetValue(l.Key, out var v) && v == l.Value);
            return Selector.ParseLabels(EqualitySelector(selector, "=")).Matches(ObjectWith(labels)) == expected;
        });

    [Property(MaxTest = 500)]
    public Property Negated_terms_match_exactly_the_complement()
        => Prop.ForAll(LabelSets().Zip(Gen.Elements(LabelKeys)).Zip(Gen.Elements(LabelValues)).ToArbitrary(), input =>
        {
            var ((labels, key), value) = input;
            var obj = ObjectWith(labels);
            return Selector.ParseLabels($"{key}!={value}").Matches(obj) != Selector.ParseLabels($"{key}={value}").Matches(obj)
                && Selector.ParseLabels($"!{key}").Matches(obj) != Selector.ParseLabels(key).Matches(obj)
                && Selector.ParseLabels($"{key} notin ({value})").Matches(obj) != Selector.ParseLabels($"{key} in ({value})").Matches(obj);
        });
}
