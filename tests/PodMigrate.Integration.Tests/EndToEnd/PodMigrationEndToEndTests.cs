using System.Diagnostics;
using k8s;
using k8s.Models;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Controller.Migrations;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using static PodMigrate.Integration.Tests.EndToEnd.MigrationWorld;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>
/// PodMigrations end to end: kubectl-level objects in, a pod moved between two real containerd nodes by real agents and
/// CRIU out. Each test asserts the state that matters: the counter goes on from its checkpointed value (not from 0),
/// which copies run, what is left on the share, and that a rollback leaves the source counting.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "EndToEnd")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
public sealed class PodMigrationEndToEndTests(LocalCluster cluster, ITestOutputHelper output)
{
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(150);

    [Fact(Timeout = 180_000)]
    public async Task Migrate_moves_the_counter_to_node_b_with_its_state_and_removes_the_source()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-move", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("move", source, NodeB, MigrationMode.Migrate, cts.Token);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "move", cts.Token);

        var status = done.Status.ShouldNotBeNull();
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        status.SourceNode.ShouldBe(NodeA);
        status.TargetNode.ShouldBe(NodeB);
        status.Committed.ShouldBe(true);
        status.Downtime.ShouldNotBeNullOrEmpty();
        foreach (var timing in new[] { "precheck", "checkpoint", "frozen", "prepare", "restore", "verify", "total" })
        {
            status.Timings.ShouldNotBeNull().ShouldContainKey(timing);
        }
        status.Conditions.ShouldNotBeNull().ShouldContain(c => c.Type == "Ready" && c.Status == "True");

        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        clone.Spec.NodeName.ShouldBe(NodeB);
        clone.Metadata.Annotations![MigrationAnnotations.CloneOf].ShouldBe(source.Metadata.Name);
        // The default restore: the source's image under the podmigrate RuntimeClass (RuntimeClassEndToEndTests has the rest).
        clone.Spec.Containers[0].Image.ShouldBe(status.SourceImage.ShouldNotBeNull());
        clone.Spec.RuntimeClassName.ShouldBe(CloneRestore.RuntimeClassName);
        var after = await world.ReadCounterAsync(clone, cts.Token);
        after.ShouldBeGreaterThanOrEqualTo(before, "the clone must go on from the checkpointed value, not start again from 0");

        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        (await world.Nodes.SandboxesAsync(NodeA, source.Metadata.Uid!, cts.Token)).ShouldBeEmpty("the source's sandbox must be gone from node-a");
        world.CheckpointsOnShare().ShouldBeEmpty("a checkpoint not retained is deleted once the migration is over");
        (await world.EventsForAsync(done, cts.Token)).Select(e => e.Reason).ShouldContain("Migrated");
    }

    [Fact(Timeout = 180_000)]
    public async Task Clone_keeps_the_source_counting_and_runs_a_copy_with_the_same_state()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-clone", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("copy", source, targetNode: null, MigrationMode.Clone, cts.Token, retainCheckpoint: true);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "copy", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        status.TargetNode.ShouldBe(NodeB, "the only other Ready node with an agent");
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        var cloneCount = await world.ReadCounterAsync(clone, cts.Token);
        cloneCount.ShouldBeGreaterThanOrEqualTo(before);

        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        sourceNow.Metadata.Uid.ShouldBe(source.Metadata.Uid, "Clone keeps the very same source pod");
        var sourceCount = await world.WaitForCounterAboveAsync(sourceNow, cloneCount, cts.Token);
        sourceCount.ShouldBeGreaterThan(before, "the source was resumed and counts on");
        await world.WaitForCounterAboveAsync(clone, cloneCount, cts.Token);
        world.CheckpointsOnShare().ShouldBe([status.CheckpointId!], "retainCheckpoint keeps exactly this migration's checkpoint");
    }

    [Fact(Timeout = 180_000)]
    public async Task Target_agent_down_after_the_checkpoint_rolls_back_and_the_source_goes_on_counting()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-noagent", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        await world.CreateMigrationAsync("lost-target", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "lost-target", MigrationPhase.Checkpointing, cts.Token);
        await world.KillAgentAsync(NodeB);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "lost-target", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.RolledBack, status.Message);
        // Usually the controller waits out its grace for the unreachable agent (TargetUnavailable); a call cut mid-flight by
        // the kill can instead come back as an internal error of the prepare (RestoreFailed). Either way: rolled back.
        status.RollbackReason.ShouldBeOneOf(["TargetUnavailable", "RestoreFailed"], status.Message);
        status.Message.ShouldNotBeNull().ShouldContain(NodeB);
        (await world.EventsForAsync(done, cts.Token)).ShouldContain(e => e.Reason == "RolledBack" && e.Type == "Warning");
        (await world.EventsForPodAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token)).Select(e => e.Reason)
            .ShouldBe(["Checkpointing", "MigrationRolledBack"], ignoreOrder: true, "the source pod's own events tell the story");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        var frozenAt = await world.ReadCounterAsync(sourceNow, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, frozenAt + 5, cts.Token);
        (await world.PodsAsync(source.Metadata.NamespaceProperty!, cts.Token)).ShouldHaveSingleItem().Metadata.Name.ShouldBe(source.Metadata.Name, "no clone is left");
        world.CheckpointsOnShare().ShouldBeEmpty();
    }

    [Fact(Timeout = 180_000)]
    public async Task A_corrupt_archive_at_restore_rolls_back_and_starts_nothing_on_the_target()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-corrupt", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        // Hold the target agent still (SIGSTOP) so that the archive can be damaged between publish and restore.
        await world.CreateMigrationAsync("corrupt", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "corrupt", MigrationPhase.Checkpointing, cts.Token);
        Signal("STOP", world.Agent(NodeB).Pid);
        try
        {
            var restoring = await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "corrupt", MigrationPhase.Restoring, cts.Token);
            restoring.Status!.Phase.ShouldBe(MigrationPhase.Restoring, restoring.Status.Message);
            FlipOneByte(Path.Combine(world.CheckpointsDirectory, restoring.Status.CheckpointId!));
        }
        finally
        {
            Signal("CONT", world.Agent(NodeB).Pid);
        }
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "corrupt", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.RolledBack, status.Message);
        status.RollbackReason.ShouldBe("RestoreFailed");
        status.CheckpointImage.ShouldBeNull("nothing was imported from a corrupt archive");
        (await world.Nodes.EmulatedSandboxesAsync(NodeB, cts.Token)).ShouldBeEmpty("nothing starts on the target");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        var value = await world.ReadCounterAsync(sourceNow, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, value + 5, cts.Token);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_controller_killed_mid_migration_is_replaced_and_the_migration_finishes_exactly_once()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, crashableController: true);
        var source = await world.RunCounterAsync("e2e-crash", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("survive", source, NodeB, MigrationMode.Migrate, cts.Token, retainCheckpoint: true);
        await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "survive", MigrationPhase.Checkpointing, cts.Token);
        await world.StopControllersAsync(); // a crash: the V1Lease is not released, the checkpoint call is cut
        world.StartController("controller-2");
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "survive", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        world.CheckpointsOnShare().ShouldBe([status.CheckpointId!], "one checkpoint for the migration, whoever finished it");
        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        var pods = await world.PodsAsync(source.Metadata.NamespaceProperty!, cts.Token);
        pods.ShouldHaveSingleItem("exactly one copy runs: the clone").Metadata.Name.ShouldBe(status.ClonePod);
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        (await world.ReadCounterAsync(clone, cts.Token)).ShouldBeGreaterThanOrEqualTo(before);
        (await world.Api.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync("podmigrate-controller", AgentNamespace, cancellationToken: cts.Token))
            .Spec.HolderIdentity.ShouldBe("controller-2");
    }

    /// <summary>
    /// The commit point under the worst timing: the source's agent dies right after publishing the checkpoint (before it
    /// journals the disposition), and the controller with it. The checkpoint is on the share, so the next controller
    /// restores it, but only because the restarted agent still holds the source frozen by it: the source never ran
    /// after its checkpoint, and the clone starts from at least the last value the source ever showed.
    /// </summary>
    [Fact(Timeout = 180_000)]
    public async Task Agent_and_controller_killed_at_the_commit_the_clone_starts_from_at_least_the_last_value_the_source_showed()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, crashableController: true);
        await world.KillAgentAsync(NodeA);
        await world.StartAgentAsync(NodeA, cts.Token, new Dictionary<string, string> { ["PODMIGRATE_AGENT__FAULTEXITAT"] = nameof(CommitPoint.AfterPublish) });
        var source = await world.RunCounterAsync("e2e-commit", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 10, cts.Token);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var sourceShown = WatchCounterAsync(world, source, watching.Token);

        await world.CreateMigrationAsync("commit", source, NodeB, MigrationMode.Migrate, cts.Token, retainCheckpoint: true);
        await world.Agent(NodeA).ExitedAsync(cts.Token); // killed itself right after the manifest's rename
        await world.StopControllersAsync();              // the controller crashes too: its checkpoint call is gone
        await world.KillAgentAsync(NodeA);
        await world.StartAgentAsync(NodeA, cts.Token);   // the node's agent comes back (no fault)
        world.StartController("controller-2");

        var done = await world.WaitForMigrationAsync(source.Metadata.NamespaceProperty!, "commit", m => m.Status?.ClonePod is not null && m.Status.CloneCreatedAt is not null || MigrationPhase.IsTerminal(m.Status?.Phase), "the clone created", cts.Token);
        done.Status!.RollbackReason.ShouldBeNull(done.Status.Message);
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, done.Status.ClonePod!, cts.Token);
        var cloneFirst = await world.WaitForCounterAboveAsync(clone, -1, cts.Token);
        var final = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "commit", cts.Token);
        await watching.CancelAsync();
        var shown = await sourceShown;

        final.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, final.Status.Message);
        world.CheckpointsOnShare().ShouldBe([final.Status.CheckpointId!], "one checkpoint: the committed one was restored, not taken again");
        shown.Count.ShouldBeGreaterThan(0);
        output.WriteLine($"source showed {shown.Count} values, last {shown.Max()}; the clone's first read {cloneFirst}");
        cloneFirst.ShouldBeGreaterThanOrEqualTo(shown.Max(), "the clone must start from at least the last value the source ever showed: the source never ran after its checkpoint");
    }

    /// <summary>
    /// The early seal under the worst timing: the source's agent dies right after it sealed the checkpoint in the share's
    /// staging (the target may have verified and prepared it, the controller may have created the clone), before the
    /// archive is durable. The checkpoint never reaches the share, so nothing may be committed: the migration rolls back,
    /// the restarted agent still holds the source (it is not resumed at start-up while a clone may run), and the source
    /// runs on from its state once the clone is gone: exactly one copy, and no state lost.
    /// </summary>
    [Fact(Timeout = 180_000)]
    public async Task Source_agent_killed_after_the_seal_before_the_archive_is_durable_rolls_back_and_the_source_runs_on_from_its_state()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        await world.KillAgentAsync(NodeA);
        await world.StartAgentAsync(NodeA, cts.Token, new Dictionary<string, string> { ["PODMIGRATE_AGENT__FAULTEXITAT"] = nameof(CommitPoint.AfterSeal) });
        var source = await world.RunCounterAsync("e2e-sealed", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        await world.CreateMigrationAsync("sealed", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.Agent(NodeA).ExitedAsync(cts.Token); // killed itself right after the seal
        await world.KillAgentAsync(NodeA);
        await world.StartAgentAsync(NodeA, cts.Token);   // the node's agent comes back (no fault)

        var final = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "sealed", cts.Token);
        final.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, final.Status.Message);
        world.CheckpointsOnShare().ShouldBeEmpty("a checkpoint sealed and never made durable is not published");
        var pods = await world.PodsAsync(source.Metadata.NamespaceProperty!, cts.Token);
        pods.ShouldHaveSingleItem("exactly one copy runs: the source").Metadata.Name.ShouldBe(source.Metadata.Name);
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        (await world.WaitForCounterAboveAsync(sourceNow, before, cts.Token)).ShouldBeGreaterThan(before, "the source runs on from its own state");
        (await world.Nodes.EmulatedSandboxesAsync(NodeB, cts.Token)).ShouldBeEmpty("no clone is left on node-b");
    }

    /// <summary>Every value the pod's counter shows until cancelled (reads of a frozen or deleted pod time out or fail).</summary>
    internal static async Task<List<long>> WatchCounterAsync(MigrationWorld world, V1Pod pod, CancellationToken cancellationToken)
    {
        var values = new List<long>();
        while (!cancellationToken.IsCancellationRequested)
        {
            using var read = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            read.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                values.Add(await world.ReadCounterAsync(pod, read.Token));
                await Task.Delay(50, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
            }
        }
        return values;
    }

    [Fact(Timeout = 180_000)]
    public async Task Deleting_a_migration_mid_flight_rolls_back_cleanly()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-delete", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        await world.CreateMigrationAsync("changed-mind", source, NodeB, MigrationMode.Migrate, cts.Token, verifyWindow: "60s");
        var verifying = await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "changed-mind", MigrationPhase.Verifying, cts.Token);
        verifying.Status!.Phase.ShouldBe(MigrationPhase.Verifying, verifying.Status.Message);
        verifying.Metadata.Finalizers.ShouldNotBeNull().ShouldContain(PodMigration.Finalizer);
        await world.Api.DeleteAsync(PodMigration.Resource, source.Metadata.NamespaceProperty, "changed-mind", null, cts.Token);
        await MigrationWorld.WaitForAsync(
            async ct => (await world.Api.ListAsync(PodMigration.Resource, source.Metadata.NamespaceProperty, null, ct)).Items.Count,
            n => n == 0, "the PodMigration finalized and gone", cts.Token);

        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, verifying.Status.ClonePod!, cts.Token);
        (await world.Nodes.EmulatedSandboxesAsync(NodeB, cts.Token)).ShouldBeEmpty("the clone is gone from node-b");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        sourceNow.Metadata.Uid.ShouldBe(source.Metadata.Uid);
        var value = await world.ReadCounterAsync(sourceNow, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, value + 5, cts.Token);
        world.CheckpointsOnShare().ShouldBeEmpty();
    }

    [Fact(Timeout = 180_000)]
    public async Task Two_migrations_at_once_on_different_pods_both_succeed()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var first = await world.RunCounterAsync("e2e-two-a", NodeA, cts.Token);
        var second = await world.RunCounterAsync("e2e-two-b", NodeA, cts.Token);
        var firstBefore = await world.WaitForCounterAboveAsync(first, 10, cts.Token);
        var secondBefore = await world.WaitForCounterAboveAsync(second, 10, cts.Token);

        await Task.WhenAll(
            world.CreateMigrationAsync("move-first", first, NodeB, MigrationMode.Migrate, cts.Token),
            world.CreateMigrationAsync("move-second", second, NodeB, MigrationMode.Migrate, cts.Token));
        var done = await Task.WhenAll(
            world.WaitForTerminalAsync(first.Metadata.NamespaceProperty!, "move-first", cts.Token),
            world.WaitForTerminalAsync(second.Metadata.NamespaceProperty!, "move-second", cts.Token));

        foreach (var (migration, before) in done.Zip([firstBefore, secondBefore]))
        {
            migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
            var clone = await world.WaitForPodReadyAsync(migration.Namespace, migration.Status.ClonePod!, cts.Token);
            clone.Spec.NodeName.ShouldBe(NodeB);
            (await world.ReadCounterAsync(clone, cts.Token)).ShouldBeGreaterThanOrEqualTo(before);
        }
        done[0].Status!.CheckpointId.ShouldNotBe(done[1].Status!.CheckpointId);
        // The sources' pod objects go once their kubelet has confirmed the (already discarded) containers stopped.
        await world.WaitForPodGoneAsync(first.Metadata.NamespaceProperty!, first.Metadata.Name!, cts.Token);
        await world.WaitForPodGoneAsync(second.Metadata.NamespaceProperty!, second.Metadata.Name!, cts.Token);
        (await world.PodsAsync(first.Metadata.NamespaceProperty!, cts.Token)).Select(p => p.Spec.NodeName).ShouldBe([NodeB, NodeB]);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_clone_of_pod_is_filled_from_a_fresh_checkpoint_of_its_source()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync("e2e-cloneof", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        // What a user writes: the source's container, gated, with the annotation and a target node.
        var request = TestPods.Counter(cluster.Image("counter"), "e2e-cloneof-copy");
        request.Metadata.Uid = null;
        request.Metadata.Annotations![MigrationAnnotations.CloneOf] = source.Metadata.Name!;
        request.Spec.NodeSelector = new Dictionary<string, string>() { ["kubernetes.io/hostname"] = NodeB };
        request.Spec.SchedulingGates = [new V1PodSchedulingGate { Name = MigrationAnnotations.CloneGate }];
        var requested = await world.Api.CreateAsync(KubeResources.V1Pods, request.Metadata.NamespaceProperty, request, cts.Token);

        var filled = await world.WaitForPodReadyAsync(requested.Metadata.NamespaceProperty!, requested.Metadata.Name!, cts.Token);
        filled.Metadata.Uid.ShouldBe(requested.Metadata.Uid, "the user's own pod is filled, not replaced");
        filled.Spec.NodeName.ShouldBe(NodeB);
        filled.Spec.SchedulingGates.ShouldBeNull();
        (await world.ReadCounterAsync(filled, cts.Token)).ShouldBeGreaterThanOrEqualTo(before);
        var migration = await world.WaitForTerminalAsync(requested.Metadata.NamespaceProperty!, CloneOfReconciler.MigrationNameFor(requested.Metadata.Name!), cts.Token);
        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        migration.Spec.Mode.ShouldBe(MigrationMode.Clone);
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, before + 5, cts.Token);
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        kill.ExitCode.ShouldBe(0, $"kill -{signal} {pid}");
    }

    /// <summary>One flipped bit in the middle of the checkpoint's largest file (the compressed archive).</summary>
    private static void FlipOneByte(string checkpointDirectory)
    {
        var largest = new DirectoryInfo(checkpointDirectory).GetFiles("*", SearchOption.AllDirectories).MaxBy(f => f.Length)
            ?? throw new InvalidOperationException($"no files in {checkpointDirectory}");
        using var file = new FileStream(largest.FullName, FileMode.Open, FileAccess.ReadWrite);
        file.Position = largest.Length / 2;
        var b = file.ReadByte();
        file.Position = largest.Length / 2;
        file.WriteByte((byte)(b ^ 0x01));
    }
}
