using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Storage;
using PodMigrate.Kube.ApiServer.Strategies;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// The API server's parts on their own, without HTTP: the storage's resourceVersions and watch history (410 Gone), the
/// watch fan-out through selectors, and the per-kind strategies as they are looked up by resource type.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ApiServerPartsTests
{
    [Fact]
    public void Storage_stamps_every_write_with_the_next_resourceVersion_and_a_watch_replays_what_came_after_its_version()
    {
        var storage = new VersionedStorage(historyLimit: 100);
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "ADDED", null, Object("ns", "a"));
        storage.Commit(BuiltInTypes.Secrets, "ns", "s", "ADDED", null, Object("ns", "s"));
        var a = storage.Get(BuiltInTypes.ConfigMaps, "ns", "a");
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "MODIFIED", a, Object("ns", "a", ("v", "2")));

        storage.ResourceVersion.ShouldBe("3");
        storage.Get(BuiltInTypes.ConfigMaps, "ns", "a")["metadata"]!["resourceVersion"]!.GetValue<string>().ShouldBe("3");
        var watcher = storage.Watch(BuiltInTypes.ConfigMaps, null, Selector.Everything, Selector.Everything, "1").ShouldNotBeNull();
        Drain(watcher).ShouldBe([(3L, "MODIFIED")], "only the change after version 1, and only of configmaps");
        Should.Throw<PodMigrateException>(() => storage.Get(BuiltInTypes.ConfigMaps, "ns", "b")).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact]
    public void A_watch_from_a_version_older_than_the_history_window_is_Gone_and_one_from_inside_it_replays()
    {
        var storage = new VersionedStorage(historyLimit: 2);
        for (var i = 0; i < 4; i++)
        {
            storage.Commit(BuiltInTypes.ConfigMaps, "ns", $"c{i}", "ADDED", null, Object("ns", $"c{i}"));
        }

        storage.Watch(BuiltInTypes.ConfigMaps, null, Selector.Everything, Selector.Everything, "1").ShouldBeNull();
        Drain(storage.Watch(BuiltInTypes.ConfigMaps, null, Selector.Everything, Selector.Everything, "2").ShouldNotBeNull())
            .ShouldBe([(3L, "ADDED"), (4L, "ADDED")]);
        Drain(storage.Watch(BuiltInTypes.ConfigMaps, "ns", Selector.Everything, Selector.Everything, "0").ShouldNotBeNull())
            .Count.ShouldBe(4, "from 0: what exists, as ADDED");
        Should.Throw<PodMigrateException>(() => storage.Watch(BuiltInTypes.ConfigMaps, null, Selector.Everything, Selector.Everything, "x"));
    }

    [Fact]
    public void A_change_that_moves_an_object_into_or_out_of_a_watch_selector_arrives_as_ADDED_or_DELETED_and_a_stopped_watch_ends()
    {
        var storage = new VersionedStorage(historyLimit: 100);
        var watcher = storage.Watch(BuiltInTypes.ConfigMaps, "ns", Selector.ParseLabels("app=x"), Selector.Everything, null).ShouldNotBeNull();
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "ADDED", null, Object("ns", "a"));
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "MODIFIED", Object("ns", "a"), Object("ns", "a", ("app", "x")));
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "MODIFIED", Object("ns", "a", ("app", "x")), Object("ns", "a", ("app", "x"), ("v", "2")));
        storage.Commit(BuiltInTypes.ConfigMaps, "other", "a", "ADDED", null, Object("other", "a", ("app", "x")));
        storage.Commit(BuiltInTypes.ConfigMaps, "ns", "a", "MODIFIED", Object("ns", "a", ("app", "x")), Object("ns", "a"));

        Drain(watcher).ShouldBe([(2L, "ADDED"), (3L, "MODIFIED"), (5L, "DELETED")]);
        storage.StopWatch(watcher);
        watcher.Events.Reader.Completion.IsCompleted.ShouldBeTrue();
    }

    [Fact]
    public void Each_built_in_kind_has_its_strategy_and_a_custom_resource_its_own_even_under_a_built_in_name()
    {
        ResourceStrategies.For(BuiltInTypes.Pods).ShouldBeOfType<PodStrategy>();
        ResourceStrategies.For(BuiltInTypes.Namespaces).ShouldBeOfType<NamespaceStrategy>();
        ResourceStrategies.For(BuiltInTypes.PersistentVolumeClaims).ShouldBeOfType<PendingUntilBoundStrategy>();
        ResourceStrategies.For(BuiltInTypes.PodDisruptionBudgets).ShouldBeOfType<StatusFromControllerStrategy>();
        ResourceStrategies.For(BuiltInTypes.ConfigMaps).ShouldBeOfType<ResourceStrategy>();
        var leaseLike = BuiltInTypes.Leases with { IsCustom = true, HasStatus = true };
        ResourceStrategies.For(leaseLike).ShouldBeOfType<StatusFromControllerStrategy>();
        ResourceStrategies.For(leaseLike with { HasStatus = false }).ShouldBeOfType<ResourceStrategy>();
    }

    [Fact]
    public void An_update_keeps_the_stored_status_of_a_kind_with_a_status_subresource_and_a_status_update_changes_only_the_status()
    {
        var strategy = ResourceStrategies.For(BuiltInTypes.Deployments);
        var current = new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 1 }, ["status"] = new JsonObject { ["ready"] = 1 } };
        var body = new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 2 }, ["status"] = new JsonObject { ["ready"] = 9 } };

        var main = strategy.PrepareForUpdate(body, current, statusOnly: false);
        main["spec"]!["replicas"]!.GetValue<int>().ShouldBe(2);
        main["status"]!["ready"]!.GetValue<int>().ShouldBe(1);
        var status = strategy.PrepareForUpdate(body, current, statusOnly: true);
        status["spec"]!["replicas"]!.GetValue<int>().ShouldBe(1);
        status["status"]!["ready"]!.GetValue<int>().ShouldBe(9);
        ResourceStrategies.For(BuiltInTypes.ConfigMaps).PrepareForUpdate(body, current, statusOnly: false)["status"]!["ready"]!.GetValue<int>()
            .ShouldBe(9, "a kind without a status subresource writes what it is sent");
    }

    [Fact]
    public void A_pod_keeps_its_node_once_bound_and_only_a_bound_pod_is_deleted_gracefully()
    {
        var pods = ResourceStrategies.For(BuiltInTypes.Pods);
        var bound = new JsonObject { ["spec"] = new JsonObject { ["nodeName"] = "node-a" } };
        var moved = new JsonObject { ["spec"] = new JsonObject { ["nodeName"] = "node-b" } };

        Should.Throw<PodMigrateException>(() => pods.ValidateUpdate("p", moved, bound)).Message.ShouldContain("spec.nodeName: field is immutable");
        pods.ValidateUpdate("p", bound, new JsonObject { ["spec"] = new JsonObject() });
        pods.GracePeriod(new JsonObject { ["spec"] = new JsonObject() }, null).ShouldBe(0);
        pods.GracePeriod(bound, null).ShouldBe(30);
        pods.GracePeriod(bound, new JsonObject { ["gracePeriodSeconds"] = 0 }).ShouldBe(0);
        var created = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "p" } };
        pods.PrepareForCreate(created, DateTimeOffset.UnixEpoch);
        created["status"]!["phase"]!.GetValue<string>().ShouldBe("Pending");
        ResourceStrategies.For(BuiltInTypes.ConfigMaps).GracePeriod(bound, null).ShouldBe(0);
    }

    private static JsonObject Object(string ns, string name, params (string Key, string Value)[] labels) => new()
    {
        ["metadata"] = new JsonObject
        {
            ["namespace"] = ns,
            ["name"] = name,
            ["labels"] = new JsonObject(labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
        },
    };

    private static List<(long ResourceVersion, string Type)> Drain(Watcher watcher)
    {
        var events = new List<(long, string)>();
        while (watcher.Events.Reader.TryRead(out var change))
        {
            events.Add((change.ResourceVersion, change.Type));
        }
        return events;
    }
}
