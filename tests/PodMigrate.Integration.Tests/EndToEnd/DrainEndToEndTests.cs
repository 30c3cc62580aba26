using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Triggers;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using static PodMigrate.Integration.Tests.EndToEnd.MigrationWorld;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>
/// `kubectl drain` (the real one, v1.32) against the in-process API server with the controller's eviction webhook,
/// on real containerd nodes with real agents and CRIU: an opted-in counter moves to node-b with its state, a plain pod
/// is evicted, a pod whose budget allows no disruption stops the drain (kubectl exits non-zero after its timeout, the
/// pod still running), and a migration refused during a drain leaves its pod running on its node.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "EndToEnd")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
public sealed class DrainEndToEndTests(LocalCluster cluster, ITestOutputHelper output)
{
    private static readonly ResourceKind<CustomResource> Budgets = KubeResources.Custom("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget");

    [Fact(Timeout = 300_000)]
    public async Task Drain_moves_an_opted_in_counter_with_its_state_evicts_a_plain_pod_and_stops_at_a_budget()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(280));
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, tls: true);
        await world.EnableEvictionWebhookAsync(cts.Token);
        var counter = await world.RunCounterAsync("drain-move", NodeA, cts.Token, p => Replicated(p, optIn: true));
        var plain = await world.RunCounterAsync("drain-plain", NodeA, cts.Token, p => Replicated(p, optIn: false));
        var guarded = await world.RunCounterAsync("drain-guard", NodeA, cts.Token, p =>
        {
            Replicated(p, optIn: true);
            p.Metadata.Labels!["app"] = "guarded";
        });
        await world.Api.CreateAsync(Budgets, TestPods.Namespace, Budget("guarded", """{"minAvailable":1,"selector":{"matchLabels":{"app":"guarded"}}}"""), cts.Token);
        var before = await world.WaitForCounterAboveAsync(counter, 10, cts.Token);

        var drain = await world.KubectlAsync(TimeSpan.FromSeconds(200), cts.Token,
            "drain", NodeA, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s");
        output.WriteLine($"kubectl drain exited {drain.ExitCode} after {drain.Elapsed.TotalSeconds:F1} s\n--- stdout\n{drain.StandardOutput}\n--- stderr\n{drain.StandardError}");

        drain.ExitCode.ShouldNotBe(0, "the guarded pod's budget allows no disruption: the drain times out");
        drain.StandardError.ShouldContain("Cannot evict pod as it would violate the pod's disruption budget.");
        drain.StandardError.ShouldContain("being live-migrated", Case.Sensitive, "the counter's evictions were answered by the webhook while it moved");
        var migration = (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, new ListOptions { LabelSelector = $"{TriggerLabels.Trigger}={TriggerLabels.Eviction}" }, cts.Token))
            .Items.ShouldHaveSingleItem("one migration, for the counter only");
        migration.Spec.PodName.ShouldBe(counter.Metadata.Name);
        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        migration.Status.TargetNode.ShouldBe(NodeB);
        output.WriteLine($"migration {migration.Name}: downtime {migration.Status.Downtime}, timings {string.Join(", ", migration.Status.Timings?.Select(t => $"{t.Key}={t.Value}") ?? [])}");
        var clone = await world.WaitForPodReadyAsync(TestPods.Namespace, migration.Status.ClonePod!, cts.Token);
        clone.Spec.NodeName.ShouldBe(NodeB);
        (await world.ReadCounterAsync(clone, cts.Token)).ShouldBeGreaterThanOrEqualTo(before, "the counter goes on from its checkpointed value");
        await world.WaitForPodGoneAsync(TestPods.Namespace, counter.Metadata.Name!, cts.Token);
        await world.WaitForPodGoneAsync(TestPods.Namespace, plain.Metadata.Name!, cts.Token);
        var stillThere = await world.WaitForPodReadyAsync(TestPods.Namespace, guarded.Metadata.Name!, cts.Token);
        stillThere.Metadata.Uid.ShouldBe(guarded.Metadata.Uid);
        stillThere.Spec.NodeName.ShouldBe(NodeA);
        await world.WaitForCounterAboveAsync(stillThere, await world.ReadCounterAsync(stillThere, cts.Token), cts.Token);
        (await world.Api.GetAsync(KubeResources.Nodes, null, NodeA, cts.Token)).Spec.Unschedulable.ShouldBe(true, "drain cordons first");
        (await world.EventsForPodAsync(TestPods.Namespace, counter.Metadata.Name!, cts.Token)).Select(e => e.Reason).ShouldContain("EvictionMigrating");
    }

    [Fact(Timeout = 240_000)]
    public async Task A_migration_refused_during_a_drain_leaves_the_pod_running_on_its_node()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, tls: true);
        await world.EnableEvictionWebhookAsync(cts.Token);
        // An emptyDir is node-local data the checkpoint does not carry: the precheck refuses to move the pod.
        var pinned = await world.RunCounterAsync("drain-refused", NodeA, cts.Token, p =>
        {
            Replicated(p, optIn: true);
            p.Spec.Volumes = [new Volume { Name = "scratch", EmptyDir = System.Text.Json.JsonDocument.Parse("{}").RootElement }];
        });
        var before = await world.WaitForCounterAboveAsync(pinned, 5, cts.Token);

        var drain = await world.KubectlAsync(TimeSpan.FromSeconds(120), cts.Token,
            "drain", NodeA, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=45s");
        output.WriteLine($"kubectl drain exited {drain.ExitCode} after {drain.Elapsed.TotalSeconds:F1} s\n--- stderr\n{drain.StandardError}");

        drain.ExitCode.ShouldNotBe(0);
        var migration = (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, null, cts.Token)).Items.ShouldHaveSingleItem();
        migration.Metadata.Labels![TriggerLabels.Trigger].ShouldBe(TriggerLabels.Eviction);
        migration.Status!.Phase.ShouldBe(MigrationPhase.Failed);
        migration.Status.Message.ShouldNotBeNull().ShouldContain("emptyDir");
        drain.StandardError.ShouldContain($"ended {MigrationPhase.Failed}");
        var stillThere = await world.WaitForPodReadyAsync(TestPods.Namespace, pinned.Metadata.Name!, cts.Token);
        stillThere.Metadata.Uid.ShouldBe(pinned.Metadata.Uid);
        stillThere.Spec.NodeName.ShouldBe(NodeA);
        stillThere.Metadata.DeletionTimestamp.ShouldBeNull();
        await world.WaitForCounterAboveAsync(stillThere, before, cts.Token);
    }

    /// <summary>Owned by a ReplicaSet (kubectl drain refuses pods without a controller unless --force), opted in or not.</summary>
    private static void Replicated(Pod pod, bool optIn)
    {
        pod.Metadata.OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{pod.Metadata.Name}-rs", Uid = Guid.NewGuid().ToString(), Controller = true }];
        if (optIn)
        {
            pod.Metadata.Labels![TriggerLabels.LiveMigrate] = "true";
        }
    }

    private static CustomResource Budget(string name, string spec) => new()
    {
        ApiVersion = "policy/v1",
        Kind = "PodDisruptionBudget",
        Metadata = new ObjectMeta { Name = name, Namespace = TestPods.Namespace },
        Spec = KubeJson.Deserialize($$"""{"spec":{{spec}}}""", KubeClientJsonContext.Default.CustomResource, "budget").Spec,
    };
}
