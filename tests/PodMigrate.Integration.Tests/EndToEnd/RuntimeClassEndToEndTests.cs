using System.Globalization;
using k8s.Models;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Controller.Migrations;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Models;
using PodMigrate.Runtime.Contract;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using static PodMigrate.Integration.Tests.EndToEnd.MigrationWorld;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>
/// Migrations through the podmigrate RuntimeClass (issue 9), the controller's default: the target agent prepares the
/// checkpoint, the clone pod runs the source's image under the RuntimeClass, and the node's runtime restores it at
/// create. Both directions on the mixed cluster (node-a containerd 2.1, node-b 1.7, neither restoring through CRI
/// here), the counter going on from its checkpointed value, no checkpoint image on either node, the prepared staging
/// gone afterwards; and the reported downtime held against the pause memhog's heartbeat saw.
/// <para>
/// Needs the runtime wrapper and the handler on the local cluster's nodes (branch runtime): without them the precheck
/// refuses the target ("has no 'podmigrate' runtime handler") and these tests fail saying so.
/// </para>
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "EndToEnd")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "RestoreRuntime")]
public sealed class RuntimeClassEndToEndTests(LocalCluster cluster, ITestOutputHelper output)
{
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(170);

    [Theory(Timeout = 200_000)]
    [InlineData(NodeA, NodeB)]
    [InlineData(NodeB, NodeA)]
    public async Task Migrate_through_the_RuntimeClass_moves_the_counter_with_its_state_and_leaves_no_image_or_staging(string from, string to)
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var source = await world.RunCounterAsync($"rc-{from[^1]}{to[^1]}", from, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("move", source, to, MigrationMode.Migrate, cts.Token);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "move", cts.Token);

        var status = done.Status.ShouldNotBeNull();
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        status.TargetNode.ShouldBe(to);
        status.PreparedOn.ShouldBe(to);
        status.CheckpointImage.ShouldBeNull("the RuntimeClass path imports no checkpoint image");
        status.SourceStoppedAt.ShouldNotBeNull();
        status.RestoredAt.ShouldNotBeNull("the runtime records when the restored process ran again");
        status.RestoredAt!.Value.ShouldBeGreaterThan(status.SourceStoppedAt!.Value);
        status.Downtime.ShouldNotBeNullOrEmpty();
        status.Timings.ShouldNotBeNull().ShouldContainKey("prepare");

        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        clone.Spec.NodeName.ShouldBe(to);
        clone.Spec.RuntimeClassName.ShouldBe(CloneRestore.RuntimeClassName);
        // The source's image by the digest its node reported: the root file system CRIU dumped from, whatever the tag says now.
        var tagged = source.Spec.Containers[0].Image!;
        var repository = tagged[..tagged.LastIndexOf(':')];
        status.SourceImage.ShouldNotBeNull().ShouldStartWith(repository + "@sha256:");
        clone.Spec.Containers[0].Image.ShouldBe(status.SourceImage, "the clone runs the source's image, pinned; the runtime restores into it");
        clone.Metadata.Annotations![RestoreAnnotations.Checkpoint].ShouldBe(status.CheckpointId);
        var after = await world.ReadCounterAsync(clone, cts.Token);
        after.ShouldBeGreaterThanOrEqualTo(before, "the clone must go on from the checkpointed value, not start again from 0");
        await world.WaitForCounterAboveAsync(clone, after, cts.Token);

        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        foreach (var node in new[] { NodeA, NodeB })
        {
            var images = await cluster.Cri(node).Images.ListImagesAsync(cts.Token);
            images.SelectMany(i => i.RepoTags).Where(t => t.Contains("podmigrate/checkpoint", StringComparison.Ordinal))
                .ShouldBeEmpty($"no checkpoint image on {node}");
        }
        var prepared = cluster.Info.Node(to).PreparedDir.ShouldNotBeNull("cluster.json names the node's prepared directory");
        Directory.Exists(PreparedLayout.DirectoryOf(prepared, status.CheckpointId!)).ShouldBeFalse("the prepared staging is released after success");
        world.CheckpointsOnShare().ShouldBeEmpty();
    }

    /// <summary>
    /// The target's agent dies while it prepares the checkpoint (before its seal: the staging is half-made) or right after
    /// the seal (before the controller heard of it). The source stays held by its checkpoint meanwhile; the node's agent
    /// comes back, drops the unsealed staging or keeps the sealed one, the controller prepares again (or attaches to the
    /// seal), and the migration ends with one copy running from at least the last value the source ever showed, and
    /// no staging left on the target.
    /// </summary>
    [Theory(Timeout = 200_000)]
    [InlineData(nameof(CommitPoint.BeforePrepareSeal))]
    [InlineData(nameof(CommitPoint.AfterPrepareSeal))]
    public async Task The_target_agent_killed_while_preparing_leaves_the_source_held_and_the_migration_finishes_from_its_checkpoint(string faultPoint)
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        await world.KillAgentAsync(NodeB);
        await world.StartAgentAsync(NodeB, cts.Token, new Dictionary<string, string> { ["PODMIGRATE_AGENT__FAULTEXITAT"] = faultPoint });
        var source = await world.RunCounterAsync($"rc-prep-{faultPoint.Length}", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 10, cts.Token);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var sourceShown = PodMigrationEndToEndTests.WatchCounterAsync(world, source, watching.Token);

        await world.CreateMigrationAsync("prep-killed", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.Agent(NodeB).ExitedAsync(cts.Token); // SIGKILLed itself at the fault point
        var held = await world.WaitForMigrationAsync(source.Metadata.NamespaceProperty!, "prep-killed", _ => true, "the migration read", cts.Token);
        MigrationPhase.IsTerminal(held.Status?.Phase).ShouldBeFalse($"the migration waits for the target's agent: {held.Status?.Message}");
        held.Status!.CloneCreatedAt.ShouldBeNull("no clone pod before the target has a sealed checkpoint the controller knows of");
        await world.KillAgentAsync(NodeB);
        await world.StartAgentAsync(NodeB, cts.Token); // the node's agent comes back, without the fault

        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "prep-killed", cts.Token);
        await watching.CancelAsync();
        var shown = await sourceShown;
        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        status.Conditions.ShouldNotBeNull().ShouldContain(c => c.Type == "TargetReachable" && c.Status == "True",
            "the controller saw the target unreachable and then answering again");
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        var cloneFirst = await world.WaitForCounterAboveAsync(clone, -1, cts.Token);
        output.WriteLine($"{faultPoint}: source showed {shown.Count} values, last {shown.Max()}; the clone's first read {cloneFirst}");
        cloneFirst.ShouldBeGreaterThanOrEqualTo(shown.Max(), "the clone starts from the checkpoint: the source never ran after it");
        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        (await world.PodsAsync(source.Metadata.NamespaceProperty!, cts.Token)).ShouldHaveSingleItem("exactly one copy runs: the clone");
        var prepared = cluster.Info.Node(NodeB).PreparedDir.ShouldNotBeNull("cluster.json names the node's prepared directory");
        Directory.EnumerateFileSystemEntries(prepared).Where(e => Path.GetFileName(e).StartsWith(status.CheckpointId!, StringComparison.Ordinal))
            .ShouldBeEmpty("neither the killed attempt's staging nor the consumed one is left on the target");
        world.CheckpointsOnShare().ShouldBeEmpty();
    }

    [Fact(Timeout = 200_000)]
    public async Task Reported_downtime_matches_the_pause_the_workload_saw_within_10_percent_or_100_ms()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token);
        var manifest = TestPods.Memhog(cluster.Image("memhog"), "rc-downtime", mib: 64);
        manifest.Spec.Containers[0].ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = "http" }, PeriodSeconds = 1 };
        var created = await world.Nodes.CreatePodAsync(manifest, NodeA, cts.Token);
        var source = await world.WaitForPodReadyAsync(created.Metadata.NamespaceProperty!, created.Metadata.Name!, cts.Token);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // From here on the longest gap is the migration's (the start-up's fill and probes are behind it).
        await Heartbeat.ReadAsync(http, source, reset: true, cts.Token);

        await world.CreateMigrationAsync("move", source, NodeB, MigrationMode.Migrate, cts.Token);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "move", cts.Token);
        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        var seen = await Heartbeat.ReadAsync(http, clone, reset: false, cts.Token);
        var reported = Kube.Serialization.KubeDuration.Parse(status.Downtime!, "status.downtime");

        output.WriteLine($"reported downtime {reported.TotalMilliseconds:F0} ms, workload-seen pause {seen.MaxGap.TotalMilliseconds:F0} ms");
        var tolerance = TimeSpan.FromTicks(Math.Max(seen.MaxGap.Ticks / 10, TimeSpan.FromMilliseconds(100).Ticks));
        (reported - seen.MaxGap).Duration().ShouldBeLessThanOrEqualTo(tolerance,
            $"reported {status.Downtime} against a workload-seen pause of {seen.MaxGap.TotalMilliseconds:F0} ms");
    }

    /// <summary>memhog's GET /heartbeat: the longest wall-clock gap its 10 ms heartbeat thread saw.</summary>
    private sealed record Heartbeat(long Beats, TimeSpan MaxGap)
    {
        public static async Task<Heartbeat> ReadAsync(HttpClient http, V1Pod pod, bool reset, CancellationToken cancellationToken)
        {
            var text = await http.GetStringAsync(new Uri($"http://{pod.Status!.PodIP}:{TestPods.HttpPort}/heartbeat{(reset ? "/reset" : "")}"), cancellationToken);
            var fields = text.Trim().Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => long.Parse(f[1], CultureInfo.InvariantCulture));
            return new Heartbeat(fields["beats"], TimeSpan.FromTicks(fields["max_gap_ns"] / 100));
        }
    }
}
