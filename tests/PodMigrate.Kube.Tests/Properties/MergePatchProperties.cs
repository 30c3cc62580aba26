using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PodMigrate.Kube.ApiServer;

namespace PodMigrate.Kube.Tests.Properties;

/// <summary>RFC 7386 laws of <see cref="Patches.MergePatch"/> on generated JSON objects.</summary>
[Trait("Category", "Unit")]
public sealed class MergePatchProperties
{
    private static readonly string[] Keys = ["a", "b", "c", "metadata", "spec", "labels"];

    private static Gen<JsonNode?> Scalar()
        => Gen.OneOf(
            Gen.Elements("x", "", "y z", "0").Select(s => (JsonNode?)JsonValue.Create(s)),
            Gen.Choose(-3, 3).Select(i => (JsonNode?)JsonValue.Create(i)),
            Gen.Elements(true, false).Select(b => (JsonNode?)JsonValue.Create(b)),
            Gen.Choose(0, 2).Select(n => (JsonNode?)new JsonArray(Enumerable.Range(0, n).Select(i => (JsonNode?)JsonValue.Create(i)).ToArray())));

    /// <summary>An object of depth at most <paramref name="depth"/>; with <paramref name="nulls"/> some members are null (removals in a patch).</summary>
    private static Gen<JsonObject> Objects(int depth, bool nulls)
    {
        var value = depth == 0 ? Scalar() : Gen.Frequency((3, Scalar()), (1, Objects(depth - 1, nulls).Select(o => (JsonNode?)o)));
        if (nulls)
        {
            value = Gen.Frequency((4, value), (1, Gen.Constant<JsonNode?>(null)));
        }

        return Gen.SubListOf(Keys).SelectMany(keys => value.ListOf(keys.Count).Select(values =>
        {
            var obj = new JsonObject();
            for (var i = 0; i < keys.Count; i++)
            {
                obj[keys[i]] = values[i];
            }

            return obj;
        }));
    }

    private static Arbitrary<(JsonObject Target, JsonObject Patch)> Pairs()
        => Objects(2, nulls: false).Zip(Objects(2, nulls: true)).ToArbitrary();

    [Property(MaxTest = 500)]
    public Property Every_member_the_patch_sets_is_in_the_result_and_every_null_removes()
        => Prop.ForAll(Pairs(), pair =>
        {
            var result = (JsonObject)Patches.MergePatch(pair.Target, pair.Patch)!;
            return Holds(result, pair.Patch);
        });

    [Property(MaxTest = 500)]
    public Property Members_the_patch_does_not_name_are_kept()
        => Prop.ForAll(Pairs(), pair =>
        {
            var result = (JsonObject)Patches.MergePatch(pair.Target, pair.Patch)!;
            return pair.Target.Where(m => !pair.Patch.ContainsKey(m.Key))
                .All(m => result.TryGetPropertyValue(m.Key, out var v) && JsonNode.DeepEquals(v, m.Value));
        });

    [Property(MaxTest = 500)]
    public Property Applying_a_patch_twice_is_applying_it_once()
        => Prop.ForAll(Pairs(), pair =>
        {
            var once = Patches.MergePatch(pair.Target, pair.Patch);
            return JsonNode.DeepEquals(Patches.MergePatch(once, pair.Patch), once);
        });

    [Property(MaxTest = 500)]
    public Property The_target_is_not_modified()
        => Prop.ForAll(Pairs(), pair =>
        {
            var before = pair.Target.DeepClone();
            Patches.MergePatch(pair.Target, pair.Patch);
            return JsonNode.DeepEquals(before, pair.Target);
        });

    /// <summary>The patch's non-null members are in <paramref name="result"/> (objects recursively), its null members are not.</summary>
    private static bool Holds(JsonObject result, JsonObject patch)
        => patch.All(m => m.Value switch
        {
            null => !result.ContainsKey(m.Key),
            JsonObject inner => result[m.Key] is JsonObject r && Holds(r, inner),
            var v => JsonNode.DeepEquals(result[m.Key], v),
        });
}
