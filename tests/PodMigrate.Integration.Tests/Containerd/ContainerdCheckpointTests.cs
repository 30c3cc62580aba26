using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Criu;
using PodMigrate.Node.Containerd;
using Mount = Containerd.Types.Mount;

namespace PodMigrate.Integration.Tests.Containerd;

/// <summary>
/// The containerd client against real containerd 2.1 + runc + CRIU: pull through the Transfer service, run the counter
/// workload, checkpoint it with Tasks.Checkpoint and restore it with Tasks.Create(criu_image_path) + Start, on the same
/// node and on a second one; and the error kinds containerd's answers are translated to.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
[Trait("Requires", "Criu")]
public sealed class ContainerdCheckpointTests : IClassFixture<ContainerdNodesFixture>, IDisposable
{
    private readonly ContainerdNodesFixture _nodes;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(3));
    private readonly string _directory = Directory.CreateTempSubdirectory("pm-ctrd-test-").FullName;

    public ContainerdCheckpointTests(ContainerdNodesFixture nodes)
    {
        _nodes = nodes;
    }

    private CancellationToken Token => _timeout.Token;

    [Fact]
    public async Task Version_is_2_1()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "version");

        var version = await ns.Connection.VersionAsync(Token);

        version.Version.ShouldStartWith("2.1");
    }

    [Fact]
    public async Task Pull_through_transfer_stores_and_unpacks_the_image()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "pull");

        var pulled = await ns.Images.PullAsync(_nodes.CounterImage, new ImagePullOptions(PlainHttp: true), Token);

        pulled.Name.ShouldBe(_nodes.CounterImage);
        (await ns.Images.ListAsync(Token)).Select(i => i.Name).ShouldContain(_nodes.CounterImage);
        var image = await ns.Images.ResolveAsync(_nodes.CounterImage, Token);
        image.Config.Config.ShouldNotBeNull().Entrypoint.ShouldBe(["/counter"]);
        var info = await ns.Images.InfoAsync(image.Manifest.Digest, Token);
        info.Size.ShouldBe(image.Manifest.Size);
        using var manifest = new MemoryStream();
        (await ns.Images.ReadAsync(image.Manifest.Digest, manifest, Token)).ShouldBe(image.Manifest.Size);
        // Unpacked: the image's committed snapshot exists under its chain id.
        (await ns.Snapshots.StatAsync(image.ChainId, Token)).Kind.ShouldBe(global::Containerd.Services.Snapshots.V1.Kind.Committed);
    }

    [Fact]
    public async Task A_checkpointed_counter_restored_on_the_same_node_continues_from_its_value()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "same");
        var (id, mounts, counterFile) = await RunCounterAsync(ns, "counter");
        await CounterProbe.WaitForAsync(counterFile, 10, Token);

        var checkpointed = await CheckpointAndExitAsync(ns, id);
        var dumped = CounterProbe.Read(counterFile)!.Value;

        var pid = await ns.Tasks.RestoreAsync(id, mounts, TaskIo.ToFile(Path.Combine(_directory, "restored.log")),
            new TaskRestoreOptions(checkpointed, Fresh("restore-work")), Token);

        pid.ShouldBeGreaterThan(0u);
        (await ns.Tasks.GetAsync(id, Token)).State.ShouldBe(TaskState.Running);
        var seen = await CounterProbe.WaitForAsync(counterFile, dumped + 10, Token);
        seen.ShouldAllBe(value => value >= dumped, $"the restored counter must go on from {dumped}, never restart low");
    }

    [Fact]
    public async Task A_checkpointed_counter_restored_on_a_second_node_continues_from_its_value()
    {
        await using var source = TestNamespace.Create(_nodes.NodeA, "src");
        await using var target = TestNamespace.Create(_nodes.NodeB, "dst");
        var (id, sourceMounts, sourceCounter) = await RunCounterAsync(source, "mover");
        await CounterProbe.WaitForAsync(sourceCounter, 10, Token);
        var checkpointed = await CheckpointAndExitAsync(source, id);
        var dumped = CounterProbe.Read(sourceCounter)!.Value;

        // The target node: the same image pulled there, a new snapshot on it, and the source's rootfs changes (its
        // overlay upper layer: /tmp/count and whatever else the process wrote) applied before the task exists.
        await target.Images.PullAsync(_nodes.CounterImage, new ImagePullOptions(PlainHttp: true), Token);
        var image = await target.Images.ResolveAsync(_nodes.CounterImage, Token);
        var targetMounts = await target.CreateContainerAsync(id, image, Configure, Token);
        var targetUpper = ContainerdSnapshots.UpperDir(targetMounts).ShouldNotBeNull();
        UpperLayer.Copy(ContainerdSnapshots.UpperDir(sourceMounts)!, targetUpper);
        var targetCounter = Path.Combine(targetUpper, "tmp", "count");

        await target.Tasks.RestoreAsync(id, targetMounts, TaskIo.ToFile(Path.Combine(_directory, "target.log")),
            new TaskRestoreOptions(checkpointed, Fresh("target-work")), Token);

        (await target.Tasks.GetAsync(id, Token)).State.ShouldBe(TaskState.Running);
        var seen = await CounterProbe.WaitForAsync(targetCounter, dumped + 10, Token);
        seen.ShouldAllBe(value => value >= dumped, $"the counter restored on node B must go on from {dumped}");
        CounterProbe.Read(sourceCounter).ShouldBe(dumped, "the source stays stopped after a checkpoint with exit");
    }

    [Fact]
    public async Task A_missing_container_is_NotFound()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "missing");

        var container = await Should.ThrowAsync<PodMigrateException>(() => ns.Containers.GetAsync("nope", Token));
        var task = await Should.ThrowAsync<PodMigrateException>(() => ns.Tasks.GetAsync("nope", Token));

        container.Kind.ShouldBe(ErrorKind.NotFound);
        container.Message.ShouldContain("getting container nope");
        task.Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact]
    public async Task Checkpointing_a_stopped_task_is_FailedPrecondition()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "stopped");
        var (id, _, _) = await RunCounterAsync(ns, "stopper");
        await ns.Tasks.KillAsync(id, 9, all: true, Token);
        await ns.Tasks.WaitAsync(id, TimeSpan.FromSeconds(30), Token);

        var error = await Should.ThrowAsync<PodMigrateException>(
            () => ns.Tasks.CheckpointAsync(id, new TaskCheckpointOptions(Fresh("ck"), Fresh("work")), Token));

        error.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        error.Message.ShouldContain(id);
    }

    [Fact]
    public async Task Deleting_a_running_task_is_FailedPrecondition_not_Unknown()
    {
        await using var ns = TestNamespace.Create(_nodes.NodeA, "busy");
        var (id, _, counterFile) = await RunCounterAsync(ns, "busy");
        await CounterProbe.WaitForAsync(counterFile, 1, Token);

        // containerd answers Unknown ("cannot delete a running process"); the client classifies it by the task's state.
        var error = await Should.ThrowAsync<PodMigrateException>(() => ns.Tasks.DeleteAsync(id, Token));

        error.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        (await ns.Tasks.GetAsync(id, Token)).State.ShouldBe(TaskState.Running);
    }

    public void Dispose()
    {
        _timeout.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static OciSpecBuilder Configure(OciSpecBuilder spec) => spec.WithEnv("COUNTER_INTERVAL_MS", "50");

    /// <summary>Pulls the counter image into the namespace and starts it as a task; the count is read from the snapshot's upper dir.</summary>
    private async Task<(string Id, IReadOnlyList<Mount> Mounts, string CounterFile)> RunCounterAsync(TestNamespace ns, string id)
    {
        await ns.Images.PullAsync(_nodes.CounterImage, new ImagePullOptions(PlainHttp: true), Token);
        var image = await ns.Images.ResolveAsync(_nodes.CounterImage, Token);
        var mounts = await ns.CreateContainerAsync(id, image, Configure, Token);
        await ns.Tasks.CreateAsync(id, mounts, TaskIo.ToFile(Path.Combine(_directory, $"{ns.Name}-{id}.log")), Token);
        await ns.Tasks.StartAsync(id, Token);
        var upper = ContainerdSnapshots.UpperDir(mounts).ShouldNotBeNull("overlayfs snapshots mount with an upperdir");
        return (id, mounts, Path.Combine(upper, "tmp", "count"));
    }

    /// <summary>Checkpoints with exit (the migration case) into a fresh image dir, then deletes the stopped task; returns the image dir.</summary>
    private async Task<string> CheckpointAndExitAsync(TestNamespace ns, string id)
    {
        var images = Fresh("checkpoint");
        await ns.Tasks.CheckpointAsync(id, new TaskCheckpointOptions(images, Fresh("dump-work"), Exit: true), Token);

        File.Exists(Path.Combine(images, "inventory.img")).ShouldBeTrue("CRIU writes its images straight into image_path");
        (await ns.Tasks.WaitAsync(id, TimeSpan.FromSeconds(30), Token)).ShouldNotBeNull();
        (await ns.Tasks.GetAsync(id, Token)).State.ShouldBe(TaskState.Stopped);
        await ns.Tasks.DeleteAsync(id, Token);
        return images;
    }

    private string Fresh(string name) => Directory.CreateDirectory(Path.Combine(_directory, $"{name}-{Guid.NewGuid().ToString("N")[..6]}")).FullName;
}
