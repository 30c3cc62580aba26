using System.Text.Json.Nodes;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests;

[Trait("Category", "Unit")]
public sealed class MergePatchTests
{
    private static JsonObject Json(string text) => JsonNode.Parse(text)!.AsObject();

    [Fact]
    public void The_diff_carries_changes_removals_and_whole_lists_and_nothing_unchanged()
    {
        var before = Json("""{"metadata":{"name":"p","labels":{"a":"1","b":"2"}},"spec":{"gates":[{"name":"g"}],"containers":[{"name":"c","image":"x"}],"keep":{"deep":1}}}""");
        var after = Json("""{"metadata":{"name":"p","labels":{"a":"1","c":"3"}},"spec":{"containers":[{"name":"c","image":"y"}],"keep":{"deep":1}}}""");

        MergePatch.Diff(before, after)!.ToJsonString().ShouldBe(
            """{"metadata":{"labels":{"c":"3","b":null}},"spec":{"containers":[{"name":"c","image":"y"}],"gates":null}}""");
        MergePatch.Diff(before, before.DeepClone().AsObject()).ShouldBeNull();
    }

    [Fact]
    public void A_guarded_patch_names_the_version_it_was_computed_from()
    {
        var before = Json("""{"metadata":{"name":"p"},"spec":{"nodeName":null}}""");
        var after = Json("""{"metadata":{"name":"p"},"spec":{"nodeName":"node-b"}}""");
        MergePatch.Guarded(before, after, "42").ShouldBe("""{"spec":{"nodeName":"node-b"},"metadata":{"resourceVersion":"42"}}""");
        MergePatch.Guarded(before, before, "42").ShouldBe("""{"metadata":{"resourceVersion":"42"}}""");
    }
}
