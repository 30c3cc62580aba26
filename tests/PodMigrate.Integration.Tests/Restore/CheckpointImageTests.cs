using k8s.Models;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using KubeContainer = k8s.Models.V1Container;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>
/// RESTORE_CRI_IMAGE with image_only, the way the controller uses it: the counter checkpointed on one node becomes a
/// checkpoint image in the containerd of another that restores through CRI (<see cref="RestoreFixture.CriTarget"/>;
/// containerd 1.7 cannot), and a pod whose image is that reference is run through CRI exactly as a
/// kubelet runs it (ImageStatus finds it, CreateContainer with the image id, StartContainer): the counter goes on.
/// Plus: a corrupt archive imports nothing, a second import reuses the image, deleting the checkpoint removes it.
/// </summary>
[Collection(RestoreTestGroup.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
[Trait("Requires", "Criu")]
public sealed class CheckpointImageTests(RestoreFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(150);

    private LocalCluster Cluster => fixture.Cluster;

    private KubeletPodRunner TargetRunner => Cluster.Runner(fixture.CriTarget);

    private CriConnection TargetCri => Cluster.Cri(fixture.CriTarget);

    [Fact(Timeout = 180_000)]
    public async Task An_imported_checkpoint_image_is_run_by_CRI_like_a_kubelet_pod_and_the_counter_goes_on()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);
        var archivedCount = await fixture.ArchivedCountOfAsync(checkpointId, cts.Token);
        var podName = UniqueName("kubelet");
        await using var _ = PodCleanup(podName);

        var result = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);

        var expected = $"localhost/podmigrate/checkpoint/{TestPods.Namespace}-{fixture.CriSourcePod.Metadata.Name}:{checkpointId}";
        result.CheckpointImage.ShouldBe(expected);
        result.ContainerId.ShouldBeEmpty("image_only creates no container");
        result.Timings.Select(t => t.Phase).ShouldBe([Phase.Fetch, Phase.Import]);
        output.WriteLine($"counter checkpoint imported as {expected}: {string.Join(", ", result.Timings.Select(t => $"{t.Phase} {t.Duration.ToTimeSpan().TotalMilliseconds:0} ms"))}, wall {result.Wall.ToTimeSpan().TotalMilliseconds:0} ms");
        ImageReference.Parse(expected).ToString().ShouldBe(expected, "already normalised: CRI and a kubelet use it unchanged");

        // What a kubelet asks first.
        var status = (await TargetCri.Images.ImageStatusAsync(expected, cts.Token)).ShouldNotBeNull("CRI ImageStatus finds the checkpoint image");
        status.RepoTags.ShouldContain(expected);
        // What containerd's restore looks at: the image record, its manifest's annotations, its one uncompressed layer.
        var images = new ContainerdImages(fixture.CriTargetAgent.Containerd);
        var record = await images.GetAsync(expected, cts.Token);
        record.Labels.ShouldContainKeyAndValue(CheckpointImage.CheckpointIdKey, checkpointId);
        var resolved = await images.ResolveAsync(expected, cts.Token);
        var annotations = resolved.Annotations.ShouldNotBeNull().ToDictionary();
        annotations.ShouldContainKeyAndValue(CheckpointImage.ContainerNameAnnotation, "counter");
        annotations.ShouldContainKeyAndValue(CheckpointImage.CriOContainerNameAnnotation, "counter");
        annotations.ShouldContainKeyAndValue(CheckpointImage.PodNameAnnotation, fixture.CriSourcePod.Metadata.Name!);
        resolved.Layers.ShouldNotBeNull().ShouldHaveSingleItem().MediaType.ShouldBe(OciMediaTypes.LayerTar);
        status.Id.ShouldBe(resolved.ConfigDescriptor.ShouldNotBeNull().Digest, "CRI's image id is the config digest");

        // A pod as the controller's clone: its image is the reference; the runner asks ImageStatus, finds it present
        // (IfNotPresent: no pull, which could not work: no registry serves localhost/...), and creates the container
        // with the image id, the reference as the user-specified image.
        var pod = ClonePod(podName, expected);
        var running = await TargetRunner.RunAsync(pod, cts.Token);

        var container = running.Containers.ShouldHaveSingleItem();
        container.State.ShouldBe("Running");
        await RestoreAssertions.ShouldContinuePodCounterAsync(TargetRunner, podName, running.Ip.ShouldNotBeNull(), archivedCount, cts.Token);
        var containerStatus = await TargetCri.Runtime.ContainerStatusAsync(container.Id, cts.Token);
        containerStatus.Annotations.ShouldContainKeyAndValue("restored", "true");
        containerStatus.Annotations.ShouldContainKeyAndValue("checkpointImage", expected);
    }

    [Fact(Timeout = 180_000)]
    public async Task Importing_a_checkpoint_twice_gives_one_image_and_the_second_reads_nothing()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);

        var first = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);
        var second = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);

        second.CheckpointImage.ShouldBe(first.CheckpointImage);
        first.Timings.Select(t => t.Phase).ShouldContain(Phase.Fetch);
        second.Timings.ShouldBeEmpty("the node has the image: the archive is not read again");
        var images = await new ContainerdImages(fixture.CriTargetAgent.Containerd).ListAsync(cts.Token, CheckpointImages.LabelFilter(RestoreFixture.CheckpointIdOf(checkpointId)));
        images.ShouldHaveSingleItem().Name.ShouldBe(first.CheckpointImage);
        (await TargetCri.Images.ListImagesAsync(cts.Token)).Count(i => i.RepoTags.Contains(first.CheckpointImage)).ShouldBe(1);
        output.WriteLine($"first import {first.Wall.ToTimeSpan().TotalMilliseconds:0} ms, second {second.Wall.ToTimeSpan().TotalMilliseconds:0} ms");
    }

    [Fact(Timeout = 180_000)]
    public async Task An_image_that_lost_its_snapshot_is_unpacked_again_from_its_content_without_reading_the_archive()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);
        var imported = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);
        var resolved = await new ContainerdImages(fixture.CriTargetAgent.Containerd).ResolveAsync(imported.CheckpointImage, cts.Token);
        var snapshots = new ContainerdSnapshots(fixture.CriTargetAgent.Containerd);
        await snapshots.RemoveAsync(resolved.ChainId, cts.Token);

        var again = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);

        again.CheckpointImage.ShouldBe(imported.CheckpointImage);
        again.Timings.ShouldBeEmpty("the archive is not read again");
        (await snapshots.StatAsync(resolved.ChainId, cts.Token)).Kind.ShouldBe(global::Containerd.Services.Snapshots.V1.Kind.Committed, "what containerd's restore mounts is back");
    }

    [Fact(Timeout = 180_000)]
    public async Task A_pod_restored_by_the_agent_from_an_image_made_before_reuses_it_and_leaves_it_in_place()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);
        var archivedCount = await fixture.ArchivedCountOfAsync(checkpointId, cts.Token);
        var podName = UniqueName("reuse");
        await using var _ = PodCleanup(podName);
        var imported = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);

        var restored = await fixture.CriTargetAgent.Restore.RunAsync(new RestoreRequest
        {
            CheckpointId = checkpointId,
            Method = RestoreMethod.RestoreCriImage,
            Pod = new PodTarget { Namespace = TestPods.Namespace, Name = podName },
        }, _ => { }, cts.Token);

        restored.CheckpointImage.ShouldBe(imported.CheckpointImage);
        restored.Timings.Select(t => t.Phase).ShouldBe([Phase.Restore], "nothing fetched or imported, nothing removed");
        await RestoreAssertions.ShouldContinuePodCounterAsync(TargetRunner, podName, restored.PodIp, archivedCount, cts.Token);
        (await TargetCri.Images.ImageStatusAsync(imported.CheckpointImage, cts.Token)).ShouldNotBeNull("the image made for a kubelet stays");
    }

    [Fact(Timeout = 180_000)]
    public async Task A_flipped_byte_in_the_archive_is_DataLoss_and_leaves_no_image_no_content_ingest()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);
        var stored = await fixture.CriTargetAgent.Store.GetAsync(RestoreFixture.CheckpointIdOf(checkpointId), cts.Token);
        RestoreAssertions.FlipByte(stored.ArchivePath, stored.Manifest.CompressedSize / 2);
        var reference = CheckpointImage.ReferenceFor(stored.Manifest).ToString();

        var error = await Should.ThrowAsync<PodMigrateException>(() => fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token));

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain(checkpointId);
        (await new ContainerdImages(fixture.CriTargetAgent.Containerd).ListAsync(cts.Token, CheckpointImages.LabelFilter(RestoreFixture.CheckpointIdOf(checkpointId)))).ShouldBeEmpty();
        (await TargetCri.Images.ImageStatusAsync(reference, cts.Token)).ShouldBeNull("CRI knows no such image");
        (await new ContainerdContent(fixture.CriTargetAgent.Containerd).ListIngestsAsync(cts.Token))
            .Where(i => i.Ref.Contains(checkpointId, StringComparison.Ordinal)).ShouldBeEmpty("the partial layer was aborted, not left as an ingest");
    }

    [Fact(Timeout = 180_000)]
    public async Task Deleting_the_checkpoint_removes_the_nodes_image_of_it_and_frees_its_layer_and_snapshot()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointCriSourceAsync(cts.Token);
        var id = RestoreFixture.CheckpointIdOf(checkpointId);
        var imported = await fixture.CriTargetAgent.Restore.RunAsync(ImageOnly(checkpointId), _ => { }, cts.Token);
        (await TargetCri.Images.ImageStatusAsync(imported.CheckpointImage, cts.Token)).ShouldNotBeNull();
        var images = new ContainerdImages(fixture.CriTargetAgent.Containerd);
        var resolved = await images.ResolveAsync(imported.CheckpointImage, cts.Token);
        var layer = resolved.Layers.ShouldNotBeNull().Single();
        var snapshots = new ContainerdSnapshots(fixture.CriTargetAgent.Containerd);
        await snapshots.StatAsync(resolved.ChainId, cts.Token);

        await fixture.CriTargetAgent.Deletion.DeleteAsync(id, force: false, cts.Token);

        (await images.ListAsync(cts.Token, CheckpointImages.LabelFilter(id))).ShouldBeEmpty();
        (await images.ListAsync(cts.Token)).Where(i => i.Target.Digest == resolved.Manifest.Digest).Select(i => i.Name)
            .ShouldBeEmpty("no name keeps the image, not even the one CRI makes from the image id");
        await WaitUntilCriForgetsAsync(imported.CheckpointImage, cts.Token);
        (await Should.ThrowAsync<PodMigrateException>(() => images.InfoAsync(layer.Digest, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound, "the layer is freed");
        (await Should.ThrowAsync<PodMigrateException>(() => snapshots.StatAsync(resolved.ChainId, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound, "and so is its snapshot");
        (await Should.ThrowAsync<PodMigrateException>(() => fixture.CriTargetAgent.Store.GetAsync(id, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        (await Should.ThrowAsync<PodMigrateException>(() => fixture.CriTargetAgent.Deletion.DeleteAsync(id, force: false, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_restore_failing_after_containerd_mounted_the_image_leaves_no_mount_no_view_snapshot_no_pod()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        // A base image digest the registry does not have: containerd mounts the checkpoint image, then fails to pull it.
        var checkpointId = await fixture.PublishModifiedAsync(async (directory, token) =>
        {
            var path = Path.Combine(directory, CheckpointLayout.ConfigDumpFile);
            var config = ArchiveJson.DeserializeConfigDump(await File.ReadAllBytesAsync(path, token), path);
            var missing = $"{Cluster.Registry}/podmigrate/counter@sha256:{new string('0', 64)}";
            await File.WriteAllBytesAsync(path, ArchiveJson.SerializeConfigDump(config with { RootfsImageRef = missing }), token);
        }, cts.Token, from: fixture.CriCheckpointId);
        var podName = UniqueName("mountleak");
        await using var _ = PodCleanup(podName);
        var snapshots = new ContainerdSnapshots(fixture.CriTargetAgent.Containerd);
        var viewsBefore = CheckpointViews(await snapshots.ListAsync(cts.Token));
        var mountsBefore = CheckpointMounts();

        var error = await Should.ThrowAsync<PodMigrateException>(() => fixture.CriTargetAgent.Restore.RunAsync(new RestoreRequest
        {
            CheckpointId = checkpointId,
            Method = RestoreMethod.RestoreCriImage,
            Pod = new PodTarget { Namespace = TestPods.Namespace, Name = podName },
        }, _ => { }, cts.Token));

        error.Message.ShouldContain("pull", Case.Insensitive);
        (await TargetRunner.GetAsync(TestPods.Namespace, podName, cts.Token)).ShouldBeNull("the sandbox of the failed restore is removed");
        // Only what this restore made is asserted on: a mount or view left from before may go meanwhile (containerd's own cleanup).
        CheckpointMounts().Except(mountsBefore).ShouldBeEmpty("containerd's read-only checkpointNNN mount is removed");
        CheckpointViews(await snapshots.ListAsync(cts.Token)).Except(viewsBefore).ShouldBeEmpty("and so is the view snapshot behind it");
    }

    private static RestoreRequest ImageOnly(string checkpointId) => new() { CheckpointId = checkpointId, Method = RestoreMethod.RestoreCriImage, ImageOnly = true };

    /// <summary>The clone pod a controller would create: the checkpointed container's name, the checkpoint image, kubelet's defaults.</summary>
    private static V1Pod ClonePod(string name, string image) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = TestPods.Namespace, Uid = Guid.NewGuid().ToString(), Labels = new Dictionary<string, string> { ["test"] = "checkpoint-image" } },
        Spec = new V1PodSpec
        {
            TerminationGracePeriodSeconds = 2,
            Containers = [new KubeContainer { Name = "counter", Image = image, ImagePullPolicy = "IfNotPresent" }],
        },
    };

    private static string[] CheckpointMounts()
        => [.. File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => Path.GetFileName(m).StartsWith("checkpoint", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    private static string[] CheckpointViews(IEnumerable<global::Containerd.Services.Snapshots.V1.Info> snapshots)
        => [.. snapshots.Select(s => s.Name).Where(n => Path.GetFileName(n).StartsWith("checkpoint", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>CRI drops an image from its cache on containerd's delete event, a moment after the delete.</summary>
    private async Task WaitUntilCriForgetsAsync(string reference, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (await TargetCri.Images.ImageStatusAsync(reference, cancellationToken) is not null)
        {
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 250));
        }
    }

    private static string UniqueName(string prefix) => $"ckimg-{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private AsyncCleanup PodCleanup(string podName) => new(async token => await TargetRunner.RemoveAsync(TestPods.Namespace, podName, TimeSpan.FromSeconds(2), token));

}
