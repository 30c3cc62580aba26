using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Subresources;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// A budget's disruptedPods record of an eviction whose delete never came expires after the disruption controller's
/// DeletionTimeout (2 min) by itself, as kube's controller requeues the budget for then, giving the disruption back
/// without waiting for another change to the namespace.
/// </summary>
[Trait("Category", "Unit")]
public sealed class DisruptedPodsExpiryTests
{
    [Fact]
    public void An_eviction_whose_delete_failed_gives_its_disruption_back_two_minutes_later()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 3, 0, 0, TimeSpan.Zero));
        using var store = new ObjectStore(new ApiServerOptions { TimeProvider = time });
        store.Create(BuiltInTypes.Pods, "default", JsonNode.Parse("""
            {"metadata":{"name":"web-1","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"i"}]}}
            """)!.AsObject());
        var pod = store.Get(BuiltInTypes.Pods, "default", "web-1");
        pod["status"] = JsonNode.Parse("""{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}""");
        store.Update(BuiltInTypes.Pods, "default", "web-1", pod, statusOnly: true);
        store.Create(BuiltInTypes.PodDisruptionBudgets, "default", JsonNode.Parse("""
            {"metadata":{"name":"web"},"spec":{"minAvailable":0,"selector":{"matchLabels":{"app":"web"}}}}
            """)!.AsObject());
        Status(store)["disruptionsAllowed"]!.GetValue<long>().ShouldBe(1);

        // The budget is spent and the pod recorded, then the delete fails its precondition: the pod stays, not deleted.
        Should.Throw<Exception>(() => PodEviction.Evict(store, "default", "web-1", JsonNode.Parse("""{"deleteOptions":{"preconditions":{"uid":"not-this-pod"}}}""")!.AsObject()));
        store.Get(BuiltInTypes.Pods, "default", "web-1")["metadata"]!["deletionTimestamp"].ShouldBeNull();
        Status(store)["disruptedPods"]!.AsObject().ContainsKey("web-1").ShouldBeTrue();
        Status(store)["disruptionsAllowed"]!.GetValue<long>().ShouldBe(0);

        time.Advance(TimeSpan.FromSeconds(119));
        Status(store)["disruptedPods"].ShouldNotBeNull("the record lives for the whole DeletionTimeout");

        time.Advance(TimeSpan.FromSeconds(2));
        Status(store)["disruptedPods"].ShouldBeNull("expired without any other change to the namespace");
        Status(store)["disruptionsAllowed"]!.GetValue<long>().ShouldBe(1, "the disruption is given back");
    }

    private static JsonObject Status(ObjectStore store) => store.Get(BuiltInTypes.PodDisruptionBudgets, "default", "web")["status"]!.AsObject();
}
