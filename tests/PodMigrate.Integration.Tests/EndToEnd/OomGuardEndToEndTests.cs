using System.Globalization;
using k8s.Models;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Triggers;
using PodMigrate.Controller.Triggers.OomGuard;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using static PodMigrate.Integration.Tests.EndToEnd.MigrationWorld;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>
/// The OOM guard on the real stack (issue 11): both nodes with 768 MiB of memory enforced on one cgroup per node (the
/// emulator's --node-memory), a ballast pod (not opted in) and a growing memhog (opted in) on node-a.
/// <list type="bullet">
/// <item>Without the guard the kernel's OOM killer ends the grower: the danger is real, and its status says OOMKilled.</item>
/// <item>With the guard the same run ends with the grower on node-b, its memory intact, nothing OOM-killed, and exactly
/// one guard migration.</item>
/// <item>A grower too fast to move in time gets an Event and no migration at all.</item>
/// <item>A pod that fills its memory fast at start and then stays flat, under the node's capacity, is not moved (the
/// guard's settle time after a container starts).</item>
/// </list>
/// The figures (forecast at the trigger, the control run's actual time to the kill, the move) are written to the output.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "EndToEnd")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "RestoreRuntime")]
[TestCaseOrderer(RunsFirstOrderer.TypeName, RunsFirstOrderer.AssemblyName)]
public sealed class OomGuardEndToEndTests(LocalCluster cluster, ITestOutputHelper output)
{
    private const long Mi = 1024 * 1024;
    private const long NodeMemory = 768 * Mi;
    private const int BallastMib = 320;
    private const int GrowerStartMib = 64;
    private const int GrowerMaxMib = 520;
    private const int GrowerMibPerSecond = 10;
    private const int FillerMib = 300;
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(230);

    /// <summary>How long after its start the control run's grower was OOM-killed, when the control ran in this process (for the guard's lead).</summary>
    private static TimeSpan? s_controlKilledAfter;

    [Fact(Timeout = 260_000)]
    [RunsFirst]
    public async Task Without_the_guard_the_growing_workload_beside_a_ballast_is_OOM_killed()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, options: new MigrationWorldOptions { NodeMemoryBytes = NodeMemory });
        await AssertNodeMemoryAsync(world, cts.Token);
        var ballast = await RunMemhogAsync(world, "oom-ballast", BallastMib, 0, BallastMib, optIn: false, cts.Token);
        var grower = await RunMemhogAsync(world, "oom-grower", GrowerStartMib, GrowerMibPerSecond, GrowerMaxMib, optIn: true, cts.Token);

        var killed = await world.Nodes.WaitForPodAsync(grower, p => Terminated(p) is not null, "its container terminated", cts.Token);
        var terminated = Terminated(killed)!;
        terminated.Reason.ShouldBe("OOMKilled", "the kernel's OOM killer ended it on the full node, and the status says so as a kubelet's does");
        terminated.ExitCode.ShouldBe(137);
        killed.Status!.Phase.ShouldBe("Failed");
        var ballastNow = await world.Nodes.WaitForPodAsync(ballast, p => p.Status?.Phase is not null, "status", cts.Token);
        Terminated(ballastNow).ShouldBeNull("the OOM killer takes the biggest task: the grower");
        var lived = terminated.FinishedAt!.Value - terminated.StartedAt!.Value;
        s_controlKilledAfter = lived;
        output.WriteLine(Invariant($"control: OOM-killed {lived.TotalSeconds:F1} s after its start ({GrowerStartMib} MiB + {GrowerMibPerSecond} MiB/s beside {BallastMib} MiB on {NodeMemory / Mi} MiB)"));
        (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, null, cts.Token)).Items.ShouldBeEmpty("no guard ran");
    }

    [Fact(Timeout = 260_000)]
    public async Task With_the_guard_the_workload_is_moved_before_the_kill_with_its_memory_and_nothing_is_OOM_killed()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, options: new MigrationWorldOptions
        {
            NodeMemoryBytes = NodeMemory,
            OomGuard = new OomGuardSettings { VerifyWindow = "2s" },
        });
        await AssertNodeMemoryAsync(world, cts.Token);
        var ballast = await RunMemhogAsync(world, "oom-ballast", BallastMib, 0, BallastMib, optIn: false, cts.Token);
        var grower = await RunMemhogAsync(world, "oom-grower", GrowerStartMib, GrowerMibPerSecond, GrowerMaxMib, optIn: true, cts.Token);
        var baseDigest = await world.GetTextAsync(grower, "/digest/base", cts.Token);

        var (migrations, killedFirst) = await WaitForAsync(
            async ct => ((await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, null, ct)).Items,
                await world.Nodes.TryGetAsync(KubeResources.V1Pods, TestPods.Namespace, grower.Metadata.Name!, ct)),
            seen => seen.Items.Any(m => MigrationPhase.IsTerminal(m.Status?.Phase)) || (seen.Item2 is { } p && Terminated(p)?.Reason == "OOMKilled"),
            "a guard migration finished (or the grower was OOM-killed)", cts.Token);
        (killedFirst is null ? null : Terminated(killedFirst)?.Reason).ShouldNotBe("OOMKilled", "the grower was OOM-killed before the guard moved it");
        var guardMigration = migrations.ShouldHaveSingleItem("exactly one guard migration");
        guardMigration.Metadata.Labels.ShouldNotBeNull()[TriggerLabels.Trigger].ShouldBe(TriggerLabels.OomGuard);
        var status = guardMigration.Status.ShouldNotBeNull();
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        status.SourceNode.ShouldBe(NodeA);
        status.TargetNode.ShouldBe(NodeB);
        var annotations = guardMigration.Metadata.Annotations.ShouldNotBeNull();
        annotations[OomGuardLoop.ReasonAnnotation].ShouldContain("runs out of memory");
        var forecast = double.Parse(annotations[OomGuardLoop.ForecastAnnotation], CultureInfo.InvariantCulture);
        var estimate = double.Parse(annotations[OomGuardLoop.EstimateAnnotation], CultureInfo.InvariantCulture);
        (await world.EventsForPodAsync(TestPods.Namespace, grower.Metadata.Name!, cts.Token)).ShouldContain(e => e.Reason == "OomGuardMigrating");

        var clone = await world.WaitForPodReadyAsync(TestPods.Namespace, status.ClonePod!, cts.Token);
        clone.Spec.NodeName.ShouldBe(NodeB);
        (await world.GetTextAsync(clone, "/digest/base", cts.Token)).ShouldBe(baseDigest, "the memory it started with came along byte for byte");
        var frozenMib = long.Parse(annotations[OomGuardLoop.BytesAnnotation], CultureInfo.InvariantCulture) / Mi;
        var restored = await world.GetTextAsync(clone, "/", cts.Token);
        var verified = await WaitForAsync(ct => world.GetTextAsync(clone, "/", ct), s => !s.StartsWith("ok", StringComparison.Ordinal) || PassesOf(s) > PassesOf(restored),
            "the clone's memhog verified a whole pass after the restore", cts.Token);
        verified.ShouldStartWith("ok", customMessage: "every filled byte still matches its pattern");
        var mib = long.Parse(verified.Split(' ').Single(f => f.StartsWith("mib=", StringComparison.Ordinal))[4..], CultureInfo.InvariantCulture);
        mib.ShouldBeGreaterThanOrEqualTo(frozenMib * 9 / 10, "it went on from the size it had reached, not from its start");
        await world.WaitForPodGoneAsync(TestPods.Namespace, grower.Metadata.Name!, cts.Token);

        // Nothing was OOM-killed anywhere: the ballast runs on, the clone runs, nothing restarted or terminated.
        foreach (var pod in await world.PodsAsync(TestPods.Namespace, cts.Token))
        {
            Terminated(pod).ShouldBeNull($"pod {pod.Metadata.Name} has a terminated container");
            pod.Status?.ContainerStatuses?.Sum(c => c.RestartCount).ShouldBe(0);
        }
        (await world.Nodes.WaitForPodAsync(ballast, p => p.Status?.Phase == "Running", "Running", cts.Token)).Spec.NodeName.ShouldBe(NodeA);
        (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, null, cts.Token)).Items.ShouldHaveSingleItem("still exactly one guard migration (cooldown)");

        // From the container's start, as the control run's kill time is measured.
        var started = grower.Status!.ContainerStatuses?.FirstOrDefault()?.State?.Running?.StartedAt ?? grower.Status.StartTime!.Value;
        var triggered = guardMigration.Metadata.CreationTimestamp!.Value;
        var settle = new OomGuardSettings().SettleTime;
        (triggered - started).ShouldBeGreaterThanOrEqualTo(settle - TimeSpan.FromSeconds(1), "not during the settle time after the grower's start");
        output.WriteLine(Invariant($"guard: triggered {(triggered - started).TotalSeconds:F1} s after the grower's start (settle {settle.TotalSeconds:F0} s) at {frozenMib} MiB, forecast {forecast:F1} s to exhaustion, estimate {estimate:F1} s (x1.5 margin)"));
        var capture = Seconds(status.Timings, "precheck") + Seconds(status.Timings, "checkpoint");
        output.WriteLine(Invariant($"guard: move {status.Timings?.GetValueOrDefault("total")} total, precheck {status.Timings?.GetValueOrDefault("precheck")}, checkpoint {status.Timings?.GetValueOrDefault("checkpoint")} (memory captured {capture:F1} s after the trigger), downtime {status.Downtime}"));
        output.WriteLine(s_controlKilledAfter is { } killedAfter
            ? Invariant($"guard: lead — the control run's grower was OOM-killed {killedAfter.TotalSeconds:F1} s after its start: {(killedAfter - (triggered - started)).TotalSeconds:F1} s left at the trigger (forecast said {forecast:F1} s), {(killedAfter - (triggered - started)).TotalSeconds - capture:F1} s to spare after the capture")
            : "guard: lead — the control run did not run in this process; its kill time is in its own output");
    }

    [Fact(Timeout = 260_000)]
    public async Task A_workload_that_fills_fast_at_start_and_then_stays_flat_is_not_moved()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var settings = new OomGuardSettings { VerifyWindow = "2s" };
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, options: new MigrationWorldOptions
        {
            NodeMemoryBytes = NodeMemory,
            OomGuard = settings,
        });
        await AssertNodeMemoryAsync(world, cts.Token);
        var ballast = await RunMemhogAsync(world, "oom-ballast", BallastMib, 0, BallastMib, optIn: false, cts.Token);
        // 300 MiB filled at once beside 320 MiB of ballast: ~620 MiB of 768 (729 less the reserve), then flat. While it fills
        // it grows by hundreds of MiB/s: a forecast of seconds. It never runs out.
        var filler = await RunMemhogAsync(world, "oom-filler", FillerMib, 0, FillerMib, optIn: true, cts.Token);
        var start = filler.Status!.ContainerStatuses!.Single().State!.Running!.StartedAt!.Value;

        // Watched for the settle time, the recent window after it and as long again: a guard migration would show up.
        var watchedUntil = start + settings.SettleTime + settings.RecentWindow + settings.SettleTime;
        while (TimeProvider.System.GetUtcNow() < watchedUntil)
        {
            (await GuardMigrationsAsync(world, cts.Token)).ShouldBeEmpty("the start-up fill of a pod that stays flat is not a danger");
            await Task.Delay(TimeSpan.FromSeconds(1), cts.Token);
        }
        (await GuardMigrationsAsync(world, cts.Token)).ShouldBeEmpty();
        (await world.EventsForPodAsync(TestPods.Namespace, filler.Metadata.Name!, cts.Token)).Select(e => e.Reason)
            .ShouldNotContain(r => r != null && r.StartsWith("OomGuard", StringComparison.Ordinal), "not even a warning");
        var flat = await world.Nodes.WaitForPodAsync(filler, p => p.Status?.Phase is not null, "status", cts.Token);
        flat.Status!.Phase.ShouldBe("Running");
        flat.Spec.NodeName.ShouldBe(NodeA);
        Terminated(flat).ShouldBeNull();
        MibOf(await world.GetTextAsync(flat, "/", cts.Token)).ShouldBe(FillerMib, "it filled its memory and stays there");
        (await world.Nodes.WaitForPodAsync(ballast, p => p.Status?.Phase is not null, "status", cts.Token)).Status!.Phase.ShouldBe("Running");
        var usage = long.Parse((await File.ReadAllTextAsync($"/sys/fs/cgroup/memory{world.NodeCgroup(NodeA)}/memory.usage_in_bytes", cts.Token)).Trim(), CultureInfo.InvariantCulture);
        output.WriteLine(Invariant($"filler: {FillerMib} MiB filled beside {BallastMib} MiB, node-a at {usage / Mi} MiB of {NodeMemory / Mi}; no guard migration {(TimeProvider.System.GetUtcNow() - start).TotalSeconds:F0} s after its start"));
    }

    private static async Task<IReadOnlyList<PodMigration>> GuardMigrationsAsync(MigrationWorld world, CancellationToken cancellationToken)
        => (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, new ListOptions { LabelSelector = $"{TriggerLabels.Trigger}={TriggerLabels.OomGuard}" }, cancellationToken)).Items;

    private static double Seconds(IReadOnlyDictionary<string, string>? timings, string phase)
        => PodMigrate.Kube.Serialization.KubeDuration.TryParse(timings?.GetValueOrDefault(phase), out var value) ? value.TotalSeconds : 0;

    [Fact(Timeout = 260_000)]
    public async Task A_workload_growing_too_fast_to_move_in_time_is_reported_and_no_migration_starts()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, options: new MigrationWorldOptions
        {
            NodeMemoryBytes = NodeMemory,
            OomGuard = new OomGuardSettings { VerifyWindow = "2s" },
        });
        await AssertNodeMemoryAsync(world, cts.Token);
        // 400 MiB (a move of at least 5 s + 400/32 s = 17.5 s by the default estimate) growing 25 MiB/s toward 900 MiB on 768 MiB: under 15 s left.
        var rocket = await RunMemhogAsync(world, "oom-rocket", 400, 25, 900, optIn: true, cts.Token);

        var events = await WaitForAsync(ct => world.EventsForPodAsync(TestPods.Namespace, rocket.Metadata.Name!, ct),
            e => e.Any(x => x.Reason == "OomGuardCannotMoveInTime"), "the guard's Event", cts.Token);
        var report = events.First(e => e.Reason == "OomGuardCannotMoveInTime");
        report.Type.ShouldBe("Warning");
        report.Message.ShouldNotBeNull().ShouldContain("cannot move in time");
        output.WriteLine($"guard: {report.Message}");

        var ended = await world.Nodes.WaitForPodAsync(rocket, p => Terminated(p) is not null, "its container terminated", cts.Token);
        Terminated(ended)!.Reason.ShouldBe("OOMKilled");
        (await world.Api.ListAsync(PodMigration.Resource, TestPods.Namespace, null, cts.Token)).Items
            .ShouldBeEmpty("no migration was started, so none is left half-finished");
        world.CheckpointsOnShare().ShouldBeEmpty();
    }

    /// <summary>Both Nodes report the enforced memory as capacity and allocatable.</summary>
    private static async Task AssertNodeMemoryAsync(MigrationWorld world, CancellationToken cancellationToken)
    {
        foreach (var name in new[] { NodeA, NodeB })
        {
            var node = await world.Api.GetAsync(KubeResources.V1Nodes, null, name, cancellationToken);
            node.Status!.Capacity!["memory"].ToInt64().ShouldBe(NodeMemory);
            node.Status!.Allocatable!["memory"].ToInt64().ShouldBe(NodeMemory);
            var limit = await File.ReadAllTextAsync($"/sys/fs/cgroup/memory{world.NodeCgroup(name)}/memory.limit_in_bytes", cancellationToken);
            long.Parse(limit.Trim(), CultureInfo.InvariantCulture).ShouldBe(NodeMemory, "the node's cgroup is capped at its memory");
        }
    }

    /// <summary>A memhog on node-a, Running and Ready; <paramref name="optIn"/> labels it podmigrate.io/live-migrate: "true".</summary>
    private async Task<V1Pod> RunMemhogAsync(MigrationWorld world, string prefix, int mib, int growMibPerSecond, int maxMib, bool optIn, CancellationToken cancellationToken)
    {
        var manifest = TestPods.Memhog(cluster.Image("memhog"), prefix, mib);
        var container = manifest.Spec.Containers[0];
        container.Env!.Add(new V1EnvVar { Name = "MEMHOG_GROW_MIB_PER_S", Value = Invariant($"{growMibPerSecond}") });
        container.Env.Add(new V1EnvVar { Name = "MEMHOG_MAX_MIB", Value = Invariant($"{maxMib}") });
        // Verifying 1 MiB every 50 ms (not 5): two memhogs must leave the busy cores to the rest.
        container.Env.Add(new V1EnvVar { Name = "MEMHOG_SLICE_SLEEP_MS", Value = "50" });
        container.ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = "http" }, PeriodSeconds = 1 };
        manifest.Spec.RestartPolicy = "Never";
        if (optIn)
        {
            manifest.Metadata.Labels![TriggerLabels.LiveMigrate] = "true";
        }
        var created = await world.Nodes.CreatePodAsync(manifest, NodeA, cancellationToken);
        var ready = await world.WaitForPodReadyAsync(TestPods.Namespace, created.Metadata.Name!, cancellationToken);
        if (growMibPerSecond > 0)
        {
            // A memhog image from before growth ignores MEMHOG_GROW_MIB_PER_S: say so instead of waiting for a kill that never comes.
            var first = await world.GetTextAsync(ready, "/", cancellationToken);
            await WaitForAsync(ct => world.GetTextAsync(ready, "/", ct), s => s != first && MibOf(s) > MibOf(first) || MibOf(s) >= maxMib,
                $"memhog growing (the registry's {cluster.Image("memhog")} must be built from this tree: scripts/cluster.sh up pushes it)", cancellationToken);
        }
        return ready;
    }

    private static long MibOf(string status)
        => status.Split(' ').FirstOrDefault(f => f.StartsWith("mib=", StringComparison.Ordinal)) is { } field
           && long.TryParse(field[4..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var mib) ? mib : -1;

    private static V1ContainerStateTerminated? Terminated(V1Pod pod)
        => pod.Status?.ContainerStatuses?.Select(c => c.State?.Terminated ?? c.LastState?.Terminated).FirstOrDefault(t => t is not null);

    private static long PassesOf(string status)
        => status.Split(' ').FirstOrDefault(f => f.StartsWith("passes=", StringComparison.Ordinal)) is { } field
           && long.TryParse(field[7..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var passes) ? passes : -1;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
