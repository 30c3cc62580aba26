using System.Net;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Restore;
using PodMigrate.TestKit.Cluster;
using Runtime.V1;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>
/// A counter pod on node-a, checkpointed by the agent (left running), restored on node-b directly through
/// containerd's Tasks API, and a counter checkpointed on another node restored through CRI on the node that can
/// (<see cref="RestoreFixture.CriTarget"/>; containerd 1.7 cannot): the counter goes on from the checkpointed value.
/// Plus clones, a corrupted archive (DataLoss, nothing created) and bad requests.
/// </summary>
[Collection(RestoreTestGroup.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
[Trait("Requires", "Criu")]
public sealed class RestoreTests(RestoreFixture fixture)
{
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(150);

    private LocalCluster Cluster => fixture.Cluster;

    private KubeletPodRunner RunnerB => Cluster.Runner(RestoreFixture.NodeB);

    private KubeletPodRunner CriRunner => Cluster.Runner(fixture.CriTarget);

    private NodeAgent CriAgent => fixture.CriTargetAgent;

    [Fact(Timeout = 180_000)]
    public async Task Cri_image_restore_on_another_node_continues_the_counter_from_the_checkpoint()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        fixture.CriTarget.ShouldNotBe(fixture.CriSource, "the checkpoint moves across nodes");
        var podName = UniqueName("cri");
        await using var _ = PodCleanup(podName);
        var progress = new List<Progress>();

        var result = await CriAgent.Restore.RunAsync(PodRequest(podName), progress.Add, cts.Token);

        result.Method.ShouldBe(RestoreMethod.RestoreCriImage);
        result.CheckpointId.ShouldBe(fixture.CriCheckpointId);
        result.SandboxId.ShouldNotBeNullOrEmpty();
        result.Pid.ShouldBeGreaterThan(0u);
        IPNetwork.Parse(Cluster.Info.Node(fixture.CriTarget).Subnet).Contains(IPAddress.Parse(result.PodIp)).ShouldBeTrue($"pod IP {result.PodIp} is not in {fixture.CriTarget}'s subnet");
        // The checkpoint image is made, the pod runs from it, and the image, made for this restore only, goes.
        result.Timings.Select(t => t.Phase).ShouldBe([Phase.Fetch, Phase.Import, Phase.Restore, Phase.Cleanup]);
        result.CheckpointImage.ShouldStartWith("localhost/podmigrate/checkpoint/");
        (await Cluster.Cri(fixture.CriTarget).Images.ImageStatusAsync(result.CheckpointImage, cts.Token)).ShouldBeNull("the restore leaves no image behind");
        progress.Select(p => p.Phase).ShouldContain(Phase.Restore);

        var pod = (await CriRunner.GetAsync(TestPods.Namespace, podName, cts.Token)).ShouldNotBeNull();
        pod.Containers.ShouldHaveSingleItem().Id.ShouldBe(result.ContainerId);
        pod.Containers[0].State.ShouldBe("Running");
        await ShouldContinuePodCounterAsync(podName, result.PodIp, cts.Token);
        var status = await Cluster.Cri(fixture.CriTarget).Runtime.ContainerStatusAsync(result.ContainerId, cts.Token);
        status.Annotations.ShouldContainKeyAndValue("restored", "true");
        Directory.EnumerateFileSystemEntries(Path.Combine(CriAgent.StateDirectory, "staging")).ShouldBeEmpty("staging is removed after the restore");
    }

    [Fact(Timeout = 180_000)]
    public async Task Direct_restore_on_node_b_continues_the_counter_as_a_bare_container()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var containerId = UniqueName("direct");
        await using var _ = DirectCleanup(containerId);

        var result = await fixture.AgentB.Restore.RunAsync(new RestoreRequest { CheckpointId = fixture.CheckpointId, ContainerId = containerId }, _ => { }, cts.Token);

        result.Method.ShouldBe(RestoreMethod.RestoreDirect);
        result.ContainerId.ShouldBe(containerId);
        result.Timings.Select(t => t.Phase).ShouldBe([Phase.Fetch, Phase.Import, Phase.Restore]);
        var task = await new ContainerdTasks(fixture.AgentB.Containerd).GetAsync(containerId, cts.Token);
        task.State.ShouldBe(TaskState.Running);
        task.Pid.ShouldBe(result.Pid);
        File.Exists(NetworkNamespaces.PathOf(DirectRestore.NetworkNamespaceName(containerId))).ShouldBeTrue("the restored process lives in a network namespace of its own");

        var countFile = await CountFileOfAsync(containerId, cts.Token);
        var first = await RestoreAssertions.WaitForCountAsync(countFile, long.MinValue, cts.Token);
        first.ShouldBeGreaterThanOrEqualTo(fixture.ArchivedCount, "the restored counter starts from the checkpointed value, not from 0");
        (await RestoreAssertions.WaitForCountAsync(countFile, first + 10, cts.Token, floor: fixture.ArchivedCount)).ShouldBeGreaterThan(first);

        (await fixture.AgentB.Direct.RemoveAsync(containerId, cts.Token)).ShouldBeTrue();
        await Should.ThrowAsync<PodMigrateException>(() => new ContainerdContainers(fixture.AgentB.Containerd).GetAsync(containerId, cts.Token));
        File.Exists(NetworkNamespaces.PathOf(DirectRestore.NetworkNamespaceName(containerId))).ShouldBeFalse("removing the container removes its network namespace");
    }

    [Fact(Timeout = 180_000)]
    public async Task One_archive_restored_twice_gives_two_running_clones()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var first = UniqueName("clone1");
        var second = UniqueName("clone2");
        await using var cleanFirst = PodCleanup(first);
        await using var cleanSecond = PodCleanup(second);

        var a = await CriAgent.Restore.RunAsync(PodRequest(first), _ => { }, cts.Token);
        var b = await CriAgent.Restore.RunAsync(PodRequest(second), _ => { }, cts.Token);

        b.ContainerId.ShouldNotBe(a.ContainerId);
        b.SandboxId.ShouldNotBe(a.SandboxId);
        b.PodIp.ShouldNotBe(a.PodIp);
        b.Pid.ShouldNotBe(a.Pid);
        await ShouldContinuePodCounterAsync(first, a.PodIp, cts.Token);
        await ShouldContinuePodCounterAsync(second, b.PodIp, cts.Token);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_flipped_byte_in_the_archive_is_DataLoss_and_nothing_is_created()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointSourceAsync(cts.Token);
        var stored = await fixture.AgentB.Store.GetAsync(RestoreFixture.CheckpointIdOf(checkpointId), cts.Token);
        RestoreAssertions.FlipByte(stored.ArchivePath, stored.Manifest.CompressedSize / 2);
        var podName = UniqueName("corrupt");
        var containerId = UniqueName("corrupt");
        await using var cleanPod = PodCleanup(podName, RunnerB);
        await using var cleanContainer = DirectCleanup(containerId);

        var viaCri = await Should.ThrowAsync<PodMigrateException>(
            () => fixture.AgentB.Restore.RunAsync(PodRequest(podName, checkpointId), _ => { }, cts.Token));
        var direct = await Should.ThrowAsync<PodMigrateException>(
            () => fixture.AgentB.Restore.RunAsync(new RestoreRequest { CheckpointId = checkpointId, ContainerId = containerId }, _ => { }, cts.Token));

        viaCri.Kind.ShouldBe(ErrorKind.DataLoss, viaCri.Message);
        viaCri.Message.ShouldContain(checkpointId);
        direct.Kind.ShouldBe(ErrorKind.DataLoss, direct.Message);
        (await RunnerB.GetAsync(TestPods.Namespace, podName, cts.Token)).ShouldBeNull("no sandbox was created");
        var byPod = new ContainerFilter();
        byPod.LabelSelector[KubeletLabels.PodName] = podName;
        (await Cluster.Cri(RestoreFixture.NodeB).Runtime.ListContainersAsync(byPod, cts.Token)).ShouldBeEmpty("no container was created");
        (await new ContainerdContainers(fixture.AgentB.Containerd).ListAsync(cts.Token, $"id=={containerId}")).ShouldBeEmpty();
        File.Exists(NetworkNamespaces.PathOf(DirectRestore.NetworkNamespaceName(containerId))).ShouldBeFalse();
        Directory.EnumerateFileSystemEntries(Path.Combine(fixture.AgentB.StateDirectory, "staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = 180_000)]
    public async Task A_CRIU_restore_failure_is_Internal_with_the_restore_log_and_leaves_nothing_behind()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.PublishWithDamagedCriuImageAsync("pstree.img", cts.Token);
        var criCheckpointId = await fixture.PublishWithDamagedCriuImageAsync("pstree.img", cts.Token, from: fixture.CriCheckpointId);
        var podName = UniqueName("criufail");
        var containerId = UniqueName("criufail");
        await using var cleanPod = PodCleanup(podName);
        await using var cleanContainer = DirectCleanup(containerId);
        var mountsBefore = File.ReadAllText("/proc/self/mountinfo");

        var direct = await Should.ThrowAsync<PodMigrateException>(
            () => fixture.AgentB.Restore.RunAsync(new RestoreRequest { CheckpointId = checkpointId, ContainerId = containerId }, _ => { }, cts.Token));
        var viaCri = await Should.ThrowAsync<PodMigrateException>(
            () => CriAgent.Restore.RunAsync(PodRequest(podName, criCheckpointId), _ => { }, cts.Token));

        direct.Kind.ShouldBe(ErrorKind.Internal, direct.Message);
        direct.Message.ShouldContain(checkpointId);
        direct.Details.ShouldNotBeNull("the CRIU restore.log excerpt").ShouldContain("restore.log");
        (await new ContainerdContainers(fixture.AgentB.Containerd).ListAsync(cts.Token, $"id=={containerId}")).ShouldBeEmpty("the half-restored container is removed");
        File.Exists(NetworkNamespaces.PathOf(DirectRestore.NetworkNamespaceName(containerId))).ShouldBeFalse("its network namespace is removed");
        Directory.Exists(Path.Combine(fixture.AgentB.StateDirectory, "restored", containerId)).ShouldBeFalse();

        viaCri.Kind.ShouldBe(ErrorKind.Internal, viaCri.Message);
        (await CriRunner.GetAsync(TestPods.Namespace, podName, cts.Token)).ShouldBeNull("the sandbox of the failed restore is removed");
        File.ReadAllText("/proc/self/mountinfo").Split('\n').Count(l => l.Contains("/checkpoint", StringComparison.Ordinal))
            .ShouldBe(mountsBefore.Split('\n').Count(l => l.Contains("/checkpoint", StringComparison.Ordinal)), "no checkpoint mount is left behind");
        Directory.EnumerateFileSystemEntries(Path.Combine(fixture.AgentB.StateDirectory, "staging")).ShouldBeEmpty();
        Directory.EnumerateFileSystemEntries(Path.Combine(CriAgent.StateDirectory, "staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = 60_000)]
    public async Task Bad_requests_are_refused_before_anything_is_read_or_created()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(50));
        var restore = fixture.AgentB.Restore;

        (await Fails(restore.RunAsync(new RestoreRequest { CheckpointId = "ck-does-not-exist", ContainerId = "nothing-here" }, _ => { }, cts.Token))).ShouldBe(ErrorKind.NotFound);
        (await Fails(restore.RunAsync(new RestoreRequest { CheckpointId = "../etc", ContainerId = "x" }, _ => { }, cts.Token))).ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(restore.RunAsync(new RestoreRequest { CheckpointId = fixture.CheckpointId, ContainerId = "../escape" }, _ => { }, cts.Token))).ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(restore.RunAsync(PodRequest("Not_A_Name"), _ => { }, cts.Token))).ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(restore.RunAsync(new RestoreRequest { CheckpointId = fixture.CheckpointId, Method = RestoreMethod.RestoreDirect, Pod = new PodTarget { Namespace = TestPods.Namespace, Name = "p" } }, _ => { }, cts.Token))).ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(restore.RunAsync(new RestoreRequest { CheckpointId = fixture.CheckpointId }, _ => { }, cts.Token))).ShouldBe(ErrorKind.InvalidArgument);
    }

    private RestoreRequest PodRequest(string podName, string? checkpointId = null) => new()
    {
        CheckpointId = checkpointId ?? fixture.CriCheckpointId,
        Method = RestoreMethod.RestoreCriImage,
        Pod = new PodTarget { Namespace = TestPods.Namespace, Name = podName, Labels = { ["test"] = "restore" } },
    };

    private Task ShouldContinuePodCounterAsync(string podName, string podIp, CancellationToken cancellationToken)
        => RestoreAssertions.ShouldContinuePodCounterAsync(CriRunner, podName, podIp, fixture.CriArchivedCount, cancellationToken);

    /// <summary>A bare container's /tmp/count as the host sees it: in the upper directory of its snapshot.</summary>
    private async Task<string> CountFileOfAsync(string containerId, CancellationToken cancellationToken)
    {
        var container = await new ContainerdContainers(fixture.AgentB.Containerd).GetAsync(containerId, cancellationToken);
        var mounts = await new ContainerdSnapshots(fixture.AgentB.Containerd, container.Snapshotter).MountsAsync(container.SnapshotKey, cancellationToken);
        return Path.Combine(ContainerdSnapshots.UpperDir(mounts).ShouldNotBeNull(), "tmp", "count");
    }

    private static async Task<ErrorKind> Fails(Task task)
        => (await Should.ThrowAsync<PodMigrateException>(() => task)).Kind;

    private static string UniqueName(string prefix) => $"restore-{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private AsyncCleanup PodCleanup(string podName, KubeletPodRunner? runner = null)
    {
        runner ??= CriRunner;
        return new(async token => await runner.RemoveAsync(TestPods.Namespace, podName, TimeSpan.FromSeconds(2), token));
    }

    private AsyncCleanup DirectCleanup(string containerId) => new(async token => await fixture.AgentB.Direct.RemoveAsync(containerId, token));
}
