using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Core.Tests.Archive;
using static PodMigrate.Core.Tests.Store.StoreTestKit;

namespace PodMigrate.Core.Tests.Store;

/// <summary>A full share, for real: a 2 MiB tmpfs mounted for the test (needs root) and unmounted afterwards.</summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
public sealed class StoreOutOfSpaceTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_full_share_is_resource_exhausted_and_leaves_nothing_behind()
    {
        Environment.UserName.ShouldBe("root", "this test mounts a tmpfs and needs root (run the tests as root)");
        using var temp = new TempDirectory();
        var share = temp.Combine("share");
        Directory.CreateDirectory(share);
        await ProcessRunner.RunCheckedAsync(new ProcessSpec("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", share]), CancellationToken.None);
        try
        {
            var store = NewStore(share, new FakeTimeProvider(Start));

            // Checked before writing: the data alone does not fit.
            var tooBig = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("big"), pagesBytes: 3 << 20);
            var early = await Should.ThrowAsync<PodMigrateException>(() => store.PublishAsync(Request("ck-big", tooBig), null, CancellationToken.None));
            early.Kind.ShouldBe(ErrorKind.ResourceExhausted);
            early.Message.ShouldContain("ck-big");

            // Passes the check (1.5 MiB of data for 2 MiB free) but the tar's per-entry headers and padding do not fit: ENOSPC mid-write.
            var many = temp.Combine("many");
            Directory.CreateDirectory(Path.Combine(many, "checkpoint"));
            for (var i = 0; i < 800; i++)
            {
                await File.WriteAllBytesAsync(Path.Combine(many, "checkpoint", $"pages-{i}.img"), ArchiveTestData.RandomBytes(2000, i));
            }

            var late = await Should.ThrowAsync<PodMigrateException>(
                () => store.PublishAsync(Request("ck-many", many) with { Codec = new CodecSettings("none", 0) }, null, CancellationToken.None));
            late.Kind.ShouldBe(ErrorKind.ResourceExhausted, late.ToString());
            late.Message.ShouldContain("ck-many");

            (await store.ListAsync(null, CancellationToken.None)).ShouldBeEmpty();
            Directory.EnumerateFileSystemEntries(Path.Combine(share, "checkpoints", ".staging")).ShouldBeEmpty("the partial checkpoint must be removed");
            Directory.EnumerateDirectories(Path.Combine(share, "checkpoints")).Select(Path.GetFileName).ShouldBe([".staging"]);

            // The share works again once there is room.
            var small = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("small"), pagesBytes: 100_000);
            await store.PublishAsync(Request("ck-small", small), null, CancellationToken.None);
            (await store.ListAsync(null, CancellationToken.None)).Single().Id.Value.ShouldBe("ck-small");
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync(new ProcessSpec("/usr/bin/umount", [share]), CancellationToken.None);
        }
    }
}
