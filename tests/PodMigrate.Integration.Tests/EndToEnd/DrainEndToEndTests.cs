using k8s.Models;
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
/// pod still running), and a migration refused (the precheck) or rolled back (the target's agent dies during the checkpoint)
/// during a drain leaves its pod running on its node, its counter going on, kubectl not reporting it evicted.
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
        (await world.Api.GetAsync(KubeResources.V1Nodes, null, NodeA, cts.Token)).Spec.Unschedulable.ShouldBe(true, "drain cordons first");
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
            p.Spec.Volumes = [new V1Volume { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() }];
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
        (await world.EventsForAsync(migration, cts.Token)).ShouldContain(e => e.Type == "Warning", "the refusal is an Event on the PodMigration");
        (await world.EventsForPodAsync(TestPods.Namespace, pinned.Metadata.Name!, cts.Token)).Select(e => e.Reason).ShouldContain("EvictionMigrating");
        await AssertStillRunningOnItsNodeAsync(world, pinned, before, drain, cts.Token);
    }

    [Fact(Timeout = 300_000)]
    public async Task A_migration_rolled_back_during_a_drain_leaves_the_pod_running_on_its_node_with_its_count()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(280));
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, tls: true);
        await world.EnableEvictionWebhookAsync(cts.Token);
        var counter = await world.RunCounterAsync("drain-rollback", NodeA, cts.Token, p => Replicated(p, optIn: true));
        var before = await world.WaitForCounterAboveAsync(counter, 10, cts.Token);

        // The drain's eviction starts the migration; once its checkpoint is under way the target's agent dies (SIGKILL):
        // the restore cannot happen, the migration rolls back and the source resumes.
        var drainRun = world.KubectlAsync(TimeSpan.FromSeconds(200), cts.Token,
            "drain", NodeA, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=100s");
        var started = await WaitForAsync(
            async ct => (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, new ListOptions { LabelSelector = $"{TriggerLabels.Trigger}={TriggerLabels.Eviction}" }, ct)).Items,
            items => items.Count > 0, "the drain's eviction started a migration", cts.Token);
        var name = started.ShouldHaveSingleItem().Name;
        var checkpointing = await world.WaitForPhaseAsync(TestPods.Namespace, name, MigrationPhase.Checkpointing, cts.Token);
        checkpointing.Status!.Phase.ShouldBe(MigrationPhase.Checkpointing, checkpointing.Status.Message);
        await world.KillAgentAsync(NodeB);
        var done = await world.WaitForTerminalAsync(TestPods.Namespace, name, cts.Token);
        var drain = await drainRun;
        output.WriteLine($"kubectl drain exited {drain.ExitCode} after {drain.Elapsed.TotalSeconds:F1} s\n--- stdout\n{drain.StandardOutput}\n--- stderr\n{drain.StandardError}");
        output.WriteLine($"migration {name}: {done.Status!.Phase} ({done.Status.RollbackReason}): {done.Status.Message}");

        done.Status.Phase.ShouldBe(MigrationPhase.RolledBack, done.Status.Message);
        // The controller waits TargetAgentGrace for the dead agent (TargetUnavailable); a call cut by the kill can end it sooner (RestoreFailed).
        done.Status.RollbackReason.ShouldBeOneOf(["TargetUnavailable", "RestoreFailed"], done.Status.Message);
        done.Status.Message.ShouldNotBeNull().ShouldContain(NodeB);
        done.Spec.PodName.ShouldBe(counter.Metadata.Name);
        drain.ExitCode.ShouldNotBe(0, "kubectl drain keeps retrying the refused eviction until its --timeout");
        drain.StandardError.ShouldContain("being live-migrated", Case.Sensitive, "evictions while it ran were answered so");
        drain.StandardError.ShouldContain($"ended {MigrationPhase.RolledBack}", Case.Sensitive, "later evictions name the rolled-back migration");
        (await world.EventsForAsync(done, cts.Token)).ShouldContain(e => e.Reason == "RolledBack" && e.Type == "Warning");
        var podEvents = (await world.EventsForPodAsync(TestPods.Namespace, counter.Metadata.Name!, cts.Token)).Select(e => e.Reason).ToList();
        podEvents.ShouldContain("EvictionMigrating");
        podEvents.ShouldContain("MigrationRolledBack", "the pod's own events tell the story");
        podEvents.ShouldNotContain("Migrated");
        (await world.PodsAsync(TestPods.Namespace, cts.Token)).ShouldHaveSingleItem("no clone is left").Metadata.Name.ShouldBe(counter.Metadata.Name);
        await AssertStillRunningOnItsNodeAsync(world, counter, before, drain, cts.Token);
    }

    /// <summary>
    /// The very pod (same uid) runs on node-a, not being deleted, never restarted, its counter at or past
    /// <paramref name="before"/> (read before the drain) and going on; kubectl did not report it evicted.
    /// </summary>
    private async Task AssertStillRunningOnItsNodeAsync(MigrationWorld world, V1Pod pod, long before, PodMigrate.Core.Processes.ProcessResult drain, CancellationToken cancellationToken)
    {
        drain.StandardOutput.ShouldNotContain($"pod/{pod.Metadata.Name} evicted");
        var stillThere = await world.WaitForPodReadyAsync(TestPods.Namespace, pod.Metadata.Name!, cancellationToken);
        stillThere.Metadata.Uid.ShouldBe(pod.Metadata.Uid);
        stillThere.Spec.NodeName.ShouldBe(NodeA);
        stillThere.Metadata.DeletionTimestamp.ShouldBeNull();
        stillThere.Status!.Phase.ShouldBe("Running");
        stillThere.Status.ContainerStatuses.ShouldNotBeNull().ShouldAllBe(c => c.RestartCount == 0);
        var now = await world.ReadCounterAsync(stillThere, cancellationToken);
        now.ShouldBeGreaterThanOrEqualTo(before, "the counter goes on from where it was: the process was never restarted");
        await world.WaitForCounterAboveAsync(stillThere, now, cancellationToken);
        output.WriteLine($"{pod.Metadata.Name}: counter {before} before the drain, {now} after it, still on {NodeA}");
    }

    /// <summary>Owned by a ReplicaSet (kubectl drain refuses pods without a controller unless --force), opted in or not.</summary>
    private static void Replicated(V1Pod pod, bool optIn)
    {
        pod.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{pod.Metadata.Name}-rs", Uid = Guid.NewGuid().ToString(), Controller = true }];
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
