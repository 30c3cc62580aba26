using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tests.Archive;
using static PodMigrate.Core.Tests.Store.StoreTestKit;

namespace PodMigrate.Core.Tests.Store;

[Trait("Category", "Unit")]
public sealed class FileSystemCheckpointStoreTests
{
    private const int Timeout = 60_000;

    [Fact(Timeout = Timeout)]
    public async Task A_published_checkpoint_is_listed_verified_and_extracted_with_private_modes()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var source = Source(temp);

        var published = await store.PublishAsync(Request("ck-1", source), progress: null, CancellationToken.None);

        published.ArchivePath.ShouldEndWith("/checkpoints/ck-1/archive.tar.zst");
        published.Manifest.CreatedAt.ShouldBe(Start);
        published.Manifest.Codec.ShouldBe(CheckpointCodecs.Default);
        published.Manifest.Pod.ShouldBe(new PodReference("default", "counter", "uid-counter"));
        published.Manifest.CompressedSize.ShouldBe(new FileInfo(published.ArchivePath).Length);
        (await store.GetAsync(CheckpointId.Parse("ck-1"), CancellationToken.None)).Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Manifest.CheckpointId).ShouldBe(["ck-1"]);
        await store.VerifyAsync(CheckpointId.Parse("ck-1"), CancellationToken.None);

        var target = temp.Combine("restore");
        await store.ExtractAsync(CheckpointId.Parse("ck-1"), target, CancellationToken.None);
        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));

        var share = temp.Combine("share");
        foreach (var path in Directory.EnumerateFileSystemEntries(share, "*", SearchOption.AllDirectories))
        {
            DurableFileSystem.GetMode(path).ShouldBe(
                FileKinds.Of(path) == FileKind.Directory ? DurableFileSystem.PrivateDirectoryMode : DurableFileSystem.PrivateFileMode, path);
        }

        Directory.EnumerateFileSystemEntries(Path.Combine(share, "checkpoints", ".staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = Timeout)]
    public async Task An_existing_id_is_never_overwritten()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var first = await store.PublishAsync(Request("ck-same", Source(temp)), null, CancellationToken.None);

        var error = await Should.ThrowAsync<PodMigrateException>(() => store.PublishAsync(Request("ck-same", Source(temp, 1000)), null, CancellationToken.None));
        error.Kind.ShouldBe(ErrorKind.AlreadyExists);
        (await store.VerifyAsync(CheckpointId.Parse("ck-same"), CancellationToken.None)).Manifest.ArchiveSha256.ShouldBe(first.Manifest.ArchiveSha256);
    }

    [Fact(Timeout = Timeout)]
    public async Task Nothing_is_visible_until_the_publish_is_complete()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var id = CheckpointId.Parse("ck-barrier");
        using var barrier = new BlockingProgress();

        var publish = Task.Run(() => store.PublishAsync(Request(id.Value, Source(temp, 2 << 20)), barrier, CancellationToken.None));
        await barrier.Reached.WaitAsync(TimeSpan.FromSeconds(20));

        (await store.ListAsync(null, CancellationToken.None)).ShouldBeEmpty();
        (await Should.ThrowAsync<PodMigrateException>(() => store.GetAsync(id, CancellationToken.None))).Kind.ShouldBe(ErrorKind.NotFound);
        // A second writer of the same id meanwhile is refused, not interleaved.
        (await Should.ThrowAsync<PodMigrateException>(() => store.PublishAsync(Request(id.Value, Source(temp, 10)), null, CancellationToken.None)))
            .Kind.ShouldBe(ErrorKind.AlreadyExists);

        barrier.Release();
        await publish.WaitAsync(TimeSpan.FromSeconds(20));
        (await store.ListAsync(null, CancellationToken.None)).Single().Manifest.CheckpointId.ShouldBe(id.Value);
        await store.VerifyAsync(id, CancellationToken.None);
    }

    [Fact(Timeout = Timeout)]
    public async Task Concurrent_publishes_of_one_id_have_exactly_one_winner_and_different_ids_all_succeed()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var sources = Enumerable.Range(0, 6).Select(_ => Source(temp, 512 << 10)).ToArray();
        using var start = new ManualResetEventSlim();

        var same = sources.Select(source => Task.Run(async () =>
        {
            start.Wait(TimeSpan.FromSeconds(20));
            return await store.PublishAsync(Request("ck-race", source), null, CancellationToken.None);
        })).ToArray();
        var distinct = sources.Select((source, i) => Task.Run(async () =>
        {
            start.Wait(TimeSpan.FromSeconds(20));
            return await store.PublishAsync(Request($"ck-par-{i}", source), null, CancellationToken.None);
        })).ToArray();
        start.Set();

        var outcomes = new List<ErrorKind?>();
        foreach (var task in same)
        {
            try
            {
                await task.WaitAsync(TimeSpan.FromSeconds(40));
                outcomes.Add(null);
            }
            catch (PodMigrateException e)
            {
                outcomes.Add(e.Kind);
            }
        }

        outcomes.Count(o => o is null).ShouldBe(1);
        outcomes.Where(o => o is not null).ShouldAllBe(o => o == ErrorKind.AlreadyExists);
        await Task.WhenAll(distinct).WaitAsync(TimeSpan.FromSeconds(40));
        (await store.ListAsync(null, CancellationToken.None)).Count.ShouldBe(7);
        foreach (var checkpoint in await store.ListAsync(null, CancellationToken.None))
        {
            await store.VerifyAsync(checkpoint.Id, CancellationToken.None);
        }

        Directory.EnumerateFileSystemEntries(Path.Combine(temp.Combine("share"), "checkpoints", ".staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = Timeout)]
    public async Task A_flipped_byte_or_truncation_in_a_published_archive_is_data_loss_and_nothing_is_extracted()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var id = CheckpointId.Parse("ck-damaged");
        var published = await store.PublishAsync(Request(id.Value, Source(temp, 1 << 20)), null, CancellationToken.None);
        var pristine = await File.ReadAllBytesAsync(published.ArchivePath);

        foreach (var damage in new Action[]
        {
            () => ArchiveTestData.FlipByte(published.ArchivePath, pristine.Length / 3),
            () => ArchiveTestData.Truncate(published.ArchivePath, pristine.Length - 100),
        })
        {
            await File.WriteAllBytesAsync(published.ArchivePath, pristine);
            damage();
            var verify = await Should.ThrowAsync<PodMigrateException>(() => store.VerifyAsync(id, CancellationToken.None));
            verify.Kind.ShouldBe(ErrorKind.DataLoss);
            verify.Message.ShouldContain(id.Value);

            var target = temp.Combine("restore");
            var extract = await Should.ThrowAsync<PodMigrateException>(() => store.ExtractAsync(id, target, CancellationToken.None));
            extract.Kind.ShouldBe(ErrorKind.DataLoss);
            extract.Message.ShouldContain(id.Value);
            Directory.Exists(target).ShouldBeFalse();
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_damaged_manifest_is_refused_on_get_as_altered_and_skipped_by_list()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var good = await store.PublishAsync(Request("ck-good", Source(temp, 1000)), null, CancellationToken.None);
        var bad = await store.PublishAsync(Request("ck-bad", Source(temp, 1000)), null, CancellationToken.None);
        await File.WriteAllTextAsync(Path.Combine(bad.Directory, CheckpointLayout.ManifestFile), "{\"checkpointId\": ");

        // Damage or tampering, the bytes are no longer the ones the agent signed.
        var error = await Should.ThrowAsync<PodMigrateException>(() => store.GetAsync(bad.Id, CancellationToken.None));
        error.Kind.ShouldBe(ErrorKind.PermissionDenied, error.Message);
        error.Message.ShouldContain("altered");
        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id).ShouldBe([good.Id]);
    }

    [Fact(Timeout = Timeout)]
    public async Task List_is_newest_first_and_filters_by_pod()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        foreach (var (id, pod) in new[] { ("ck-a", "counter"), ("ck-b", "memhog"), ("ck-c", "counter") })
        {
            await store.PublishAsync(Request(id, Source(temp, 1000), pod), null, CancellationToken.None);
            time.Advance(TimeSpan.FromMinutes(1));
        }

        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id.Value).ShouldBe(["ck-c", "ck-b", "ck-a"]);
        (await store.ListAsync(new PodReference("default", "counter"), CancellationToken.None)).Select(c => c.Id.Value).ShouldBe(["ck-c", "ck-a"]);
        (await store.ListAsync(new PodReference("other", "counter"), CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact(Timeout = Timeout)]
    public async Task Delete_refuses_a_pinned_checkpoint_unless_forced()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var id = (await store.PublishAsync(Request("ck-pin", Source(temp, 1000)), null, CancellationToken.None)).Id;

        (await store.SetPinnedAsync(id, pinned: true, CancellationToken.None)).Manifest.Pinned.ShouldBeTrue();
        (await store.GetAsync(id, CancellationToken.None)).Manifest.Pinned.ShouldBeTrue();
        (await Should.ThrowAsync<PodMigrateException>(() => store.DeleteAsync(id, force: false, CancellationToken.None))).Kind.ShouldBe(ErrorKind.FailedPrecondition);
        await store.VerifyAsync(id, CancellationToken.None);

        await store.DeleteAsync(id, force: true, CancellationToken.None);
        (await Should.ThrowAsync<PodMigrateException>(() => store.GetAsync(id, CancellationToken.None))).Kind.ShouldBe(ErrorKind.NotFound);
        (await Should.ThrowAsync<PodMigrateException>(() => store.DeleteAsync(id, force: true, CancellationToken.None))).Kind.ShouldBe(ErrorKind.NotFound);

        var unpinned = (await store.PublishAsync(Request("ck-unpin", Source(temp, 1000), pinned: true), null, CancellationToken.None)).Id;
        await store.SetPinnedAsync(unpinned, pinned: false, CancellationToken.None);
        await store.DeleteAsync(unpinned, force: false, CancellationToken.None);
        (await store.ListAsync(null, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact(Timeout = Timeout)]
    public async Task Retention_keeps_the_last_n_per_pod_and_every_pinned_one()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        foreach (var (id, pod, pinned) in new[]
        {
            ("ck-c1", "counter", true), ("ck-c2", "counter", false), ("ck-c3", "counter", false), ("ck-c4", "counter", false),
            ("ck-m1", "memhog", false), ("ck-m2", "memhog", false),
        })
        {
            await store.PublishAsync(Request(id, Source(temp, 1000), pod, pinned), null, CancellationToken.None);
            time.Advance(TimeSpan.FromMinutes(1));
        }

        var removed = await store.ApplyRetentionAsync(new RetentionPolicy(KeepLastPerPod: 2), CancellationToken.None);

        removed.Select(i => i.Value).ShouldBe(["ck-c2"]);
        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id.Value).ShouldBe(["ck-m2", "ck-m1", "ck-c4", "ck-c3", "ck-c1"]);
    }

    [Fact(Timeout = Timeout)]
    public async Task Retention_by_age_and_by_total_bytes_spares_pinned_checkpoints()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        foreach (var (id, pinned) in new[] { ("ck-old-pinned", true), ("ck-old", false), ("ck-mid", false), ("ck-new", false) })
        {
            await store.PublishAsync(Request(id, Source(temp, 100_000), "counter", pinned), null, CancellationToken.None);
            time.Advance(TimeSpan.FromHours(1));
        }

        // Now: ck-old is 3 h old, ck-mid 2 h, ck-new 1 h.
        (await store.ApplyRetentionAsync(new RetentionPolicy(MaxAge: TimeSpan.FromHours(2.5)), CancellationToken.None)).Select(i => i.Value).ShouldBe(["ck-old"]);

        var remaining = await store.ListAsync(null, CancellationToken.None);
        var newest = remaining.First(c => c.Id.Value == "ck-new").Manifest.CompressedSize;
        var pinnedSize = remaining.First(c => c.Id.Value == "ck-old-pinned").Manifest.CompressedSize;
        (await store.ApplyRetentionAsync(new RetentionPolicy(MaxTotalBytes: newest + pinnedSize), CancellationToken.None)).Select(i => i.Value).ShouldBe(["ck-mid"]);
        (await store.ApplyRetentionAsync(new RetentionPolicy(MaxTotalBytes: 0), CancellationToken.None)).Select(i => i.Value).ShouldBe(["ck-new"]);
        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id.Value).ShouldBe(["ck-old-pinned"]);
    }

    [Fact(Timeout = Timeout)]
    public async Task Stale_staging_left_by_a_crash_is_cleaned_and_fresh_staging_is_kept()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), TimeProvider.System);
        await store.PublishAsync(Request("ck-live", Source(temp, 1000)), null, CancellationToken.None);
        var staging = Path.Combine(store.CheckpointsDirectory, ".staging");
        var stale = Path.Combine(staging, "ck-crashed.partial");
        Directory.CreateDirectory(stale);
        await File.WriteAllTextAsync(Path.Combine(stale, "archive.tar.zst"), "half");
        Directory.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-3));
        var fresh = Path.Combine(staging, "ck-running.partial");
        Directory.CreateDirectory(fresh);

        (await store.CleanupStagingAsync(TimeSpan.FromHours(1), CancellationToken.None)).ShouldBe(1);

        Directory.Exists(stale).ShouldBeFalse();
        Directory.Exists(fresh).ShouldBeTrue();
        (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id.Value).ShouldBe(["ck-live"]);
    }

    [Theory(Timeout = Timeout)]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("UPPER")]
    [InlineData(".staging")]
    [InlineData("-leading")]
    [InlineData("trailing-")]
    [InlineData("")]
    [InlineData("ck-" + "0123456789012345678901234567890123456789012345678901234567890")]
    public Task Ids_with_path_tricks_or_bad_characters_are_invalid_arguments(string value)
    {
        var error = Should.Throw<PodMigrateException>(() => CheckpointId.Parse(value));
        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task New_ids_are_valid_and_sort_by_time()
    {
        var time = new FakeTimeProvider(Start);
        var first = CheckpointId.New(time);
        time.Advance(TimeSpan.FromSeconds(1));
        var second = CheckpointId.New(time);
        CheckpointId.Parse(first.Value).ShouldBe(first);
        string.CompareOrdinal(first.Value, second.Value).ShouldBeLessThan(0);
        first.Value.ShouldStartWith("ck-20261122-100000-");
        return Task.CompletedTask;
    }
}
