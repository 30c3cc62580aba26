using System.Formats.Tar;
using System.Text.Json;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Runtime.Contract;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>
/// The agent's side of a RuntimeClass restore on a real node (issue 9, item 2): a real checkpoint of a counter pod
/// prepared on node-b is CRIU's images, the rootfs diff as a plain tar and the seal, root-only, nothing of spec.dump or
/// config.dump; a corrupt archive or a link in it leaves no staging; release removes it; start-up removes what a dead
/// agent left unsealed, and expired staging goes by age.
/// </summary>
[Collection(RestoreTestGroup.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
[Trait("Requires", "Criu")]
public sealed class PrepareTests(RestoreFixture fixture)
{
    private const UnixFileMode RootOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(120);

    private string Root => fixture.AgentB.Prepared.Root;

    [Fact(Timeout = 150_000)]
    public async Task Prepare_stages_the_images_the_plain_rootfs_diff_and_the_seal_root_only_and_release_removes_it()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointSourceAsync(cts.Token);
        var stored = await fixture.AgentB.Store.GetAsync(RestoreFixture.CheckpointIdOf(checkpointId), cts.Token);

        var info = await fixture.AgentB.Prepared.PrepareAsync(Request(checkpointId, "clone-1"), cts.Token);

        var directory = PreparedLayout.DirectoryOf(Root, checkpointId);
        info.Path.ShouldBe(directory);
        info.AlreadyPrepared.ShouldBeFalse();
        File.GetUnixFileMode(Root).ShouldBe(RootOnly);
        File.GetUnixFileMode(directory).ShouldBe(RootOnly);
        File.Exists(Path.Combine(directory, PreparedLayout.ImagesDirectory, "inventory.img")).ShouldBeTrue();
        Directory.EnumerateFiles(Path.Combine(directory, PreparedLayout.ImagesDirectory), "pages-*.img").ShouldNotBeEmpty();
        // Only what the runtime consumes: nothing from spec.dump or config.dump is there to be applied.
        Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)
            .ShouldBe(new[] { PreparedLayout.ImagesDirectory, PreparedLayout.SealFile, PreparedLayout.RootFsDiffTar }.Order(StringComparer.Ordinal));
        (await CountInDiffAsync(Path.Combine(directory, PreparedLayout.RootFsDiffTar), cts.Token)).ShouldBe(await fixture.ArchivedCountOfAsync(checkpointId, cts.Token));

        var seal = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(Path.Combine(directory, PreparedLayout.SealFile), cts.Token), RuntimeContractJson.Default.PreparedCheckpoint)!;
        seal.CheckpointId.ShouldBe(checkpointId);
        seal.PodNamespace.ShouldBe(TestPods.Namespace);
        seal.PodName.ShouldBe("clone-1");
        seal.ContainerName.ShouldBe("counter");
        seal.ArchiveSha256.ShouldBe(stored.Manifest.ArchiveSha256);
        seal.MountDestinations.ShouldContain("/proc");
        info.MountDestinations.ToList().ShouldBe(seal.MountDestinations.ToList());
        (File.GetUnixFileMode(Path.Combine(directory, PreparedLayout.SealFile)) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)).ShouldBe(UnixFileMode.None);

        // Again for the same pod: the sealed staging as it is; for another pod: refused.
        (await fixture.AgentB.Prepared.PrepareAsync(Request(checkpointId, "clone-1"), cts.Token)).AlreadyPrepared.ShouldBeTrue();
        (await Should.ThrowAsync<PodMigrateException>(() => fixture.AgentB.Prepared.PrepareAsync(Request(checkpointId, "someone-else"), cts.Token)))
            .Kind.ShouldBe(ErrorKind.FailedPrecondition);

        // The runtime's record of the restore is what the controller reads for the downtime.
        (await Should.ThrowAsync<PodMigrateException>(() => fixture.AgentB.Prepared.GetRestoredAsync(checkpointId, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        var restoredAt = DateTimeOffset.UtcNow;
        await File.WriteAllBytesAsync(PreparedLayout.RestoredRecordOf(Root, checkpointId), JsonSerializer.SerializeToUtf8Bytes(
            new RestoredRecord { CheckpointId = checkpointId, ContainerId = "c1", RestoredAtUnixNanos = (restoredAt - DateTimeOffset.UnixEpoch).Ticks * 100, RestoreSeconds = 0.5 },
            RuntimeContractJson.Default.RestoredRecord), cts.Token);
        var restored = await fixture.AgentB.Prepared.GetRestoredAsync(checkpointId, cts.Token);
        restored.RestoredAt.ToDateTimeOffset().ShouldBe(restoredAt, TimeSpan.FromMilliseconds(1));
        restored.ContainerId.ShouldBe("c1");

        (await fixture.AgentB.Prepared.ReleaseAsync(checkpointId, cts.Token)).ShouldBeTrue();
        Directory.Exists(directory).ShouldBeFalse();
        File.Exists(PreparedLayout.RestoredRecordOf(Root, checkpointId)).ShouldBeFalse();
        (await fixture.AgentB.Prepared.ReleaseAsync(checkpointId, cts.Token)).ShouldBeFalse();
    }

    [Fact(Timeout = 150_000)]
    public async Task A_flipped_byte_in_the_archive_is_DataLoss_and_leaves_no_staging()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointSourceAsync(cts.Token);
        var stored = await fixture.AgentB.Store.GetAsync(RestoreFixture.CheckpointIdOf(checkpointId), cts.Token);
        RestoreAssertions.FlipByte(stored.ArchivePath, stored.Manifest.CompressedSize / 2);

        var error = await Should.ThrowAsync<PodMigrateException>(() => fixture.AgentB.Prepared.PrepareAsync(Request(checkpointId, "clone-corrupt"), cts.Token));

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain(checkpointId);
        Directory.Exists(PreparedLayout.DirectoryOf(Root, checkpointId)).ShouldBeFalse();
    }

    [Fact(Timeout = 150_000)]
    public async Task A_link_in_the_checkpoint_even_one_that_stays_inside_is_never_published_so_nothing_can_stage_it()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        string[] Staged() => Directory.Exists(Root) ? Directory.GetDirectories(Root) : [];
        var stagedBefore = Staged();
        // A checkpoint whose container.log is a symlink (the container.log advisory): the writer refuses it, so no agent
        // publishes one. One planted on the share by hand is refused by every read of the store before anything is
        // staged (Core.Tests: CheckpointTrustTests), and prepare reads only through the store.
        var error = await Should.ThrowAsync<PodMigrateException>(() => fixture.PublishModifiedAsync((directory, _) =>
        {
            var log = Path.Combine(directory, CheckpointLayout.ContainerLogFile);
            File.Delete(log);
            File.CreateSymbolicLink(log, CheckpointLayout.DumpLogFile);
            return Task.CompletedTask;
        }, cts.Token));

        error.Message.ShouldContain(CheckpointLayout.ContainerLogFile);
        error.Message.ShouldContain("Symlink");
        Staged().ShouldBe(stagedBefore, ignoreOrder: true);
    }

    [Fact(Timeout = 150_000)]
    public async Task Start_up_removes_unsealed_staging_and_expired_staging_goes_by_age()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var checkpointId = await fixture.CheckpointSourceAsync(cts.Token);
        await fixture.AgentB.Prepared.PrepareAsync(Request(checkpointId, "clone-kept"), cts.Token);
        // What an agent killed mid-prepare leaves: images, no seal.
        var orphan = PreparedLayout.DirectoryOf(Root, "20261206-000000-orphan1");
        Directory.CreateDirectory(Path.Combine(orphan, PreparedLayout.ImagesDirectory));
        await File.WriteAllTextAsync(Path.Combine(orphan, PreparedLayout.ImagesDirectory, "pages-1.img"), "x", cts.Token);

        await fixture.AgentB.Recovery.StartAsync(cts.Token);

        Directory.Exists(orphan).ShouldBeFalse("unsealed staging of a dead agent is removed at start");
        var sealedDirectory = PreparedLayout.DirectoryOf(Root, checkpointId);
        Directory.Exists(sealedDirectory).ShouldBeTrue("sealed staging may still be waiting for its clone");

        fixture.AgentB.Prepared.Sweep(startup: false).ShouldBe(0);
        Directory.SetLastWriteTimeUtc(sealedDirectory, DateTime.UtcNow.AddHours(-2));
        fixture.AgentB.Prepared.Sweep(startup: false).ShouldBe(1);
        Directory.Exists(sealedDirectory).ShouldBeFalse("staging older than PreparedMaxAge is removed");
    }

    private static PrepareRestoreRequest Request(string checkpointId, string podName) => new()
    {
        CheckpointId = checkpointId,
        PodNamespace = TestPods.Namespace,
        PodName = podName,
    };

    private static async Task<long> CountInDiffAsync(string tar, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(tar);
        await using var reader = new TarReader(file);
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (entry.Name.TrimStart('.', '/') == "tmp/count" && entry.DataStream is { } data)
            {
                using var text = new StreamReader(data);
                return long.Parse((await text.ReadToEndAsync(cancellationToken)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException($"{tar} has no tmp/count: it is not a plain tar of the rootfs diff");
    }
}
