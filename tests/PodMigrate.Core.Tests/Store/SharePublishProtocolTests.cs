using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tests.Archive;
using PodMigrate.Core.Tests.Tls;
using static PodMigrate.Core.Tests.Store.StoreTestKit;

namespace PodMigrate.Core.Tests.Store;

/// <summary>
/// The publish protocol that holds on shares with weaker semantics than ext4 (smbnetfs: O_EXCL not exclusive across
/// clients, no RENAME_NOREPLACE, fsync a no-op, statvfs 0): per-writer staging names, read-back of what was written,
/// and the comparison of the manifest under the final name with the bytes this writer wrote.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SharePublishProtocolTests
{
    private const int Timeout = 60_000;

    [Fact(Timeout = Timeout)]
    public async Task Each_writer_stages_under_its_own_node_and_random_name()
    {
        using var temp = new TempDirectory();
        var root = temp.Combine("share");
        var store = Store(root, "Node_A.example", ShareReadBack.Never);
        using var barrier = new BlockingProgress();

        var publish = Task.Run(() => store.PublishAsync(Request("ck-named", Source(temp, 2 << 20)), barrier, CancellationToken.None));
        await barrier.Reached.WaitAsync(TimeSpan.FromSeconds(20));
        var staged = Directory.GetDirectories(Path.Combine(store.CheckpointsDirectory, ".staging")).Select(Path.GetFileName).ToList();
        barrier.Release();
        await publish.WaitAsync(TimeSpan.FromSeconds(20));

        staged.ShouldHaveSingleItem().ShouldNotBeNull().ShouldMatch(@"^ck-named\.node-a-example-[0-9a-f]{16}\.partial$");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_writer_whose_rename_reported_success_but_lost_the_race_gets_already_exists_and_the_winner_stays()
    {
        using var temp = new TempDirectory();
        var root = temp.Combine("share");
        var winner = Store(root, "node-b", ShareReadBack.Never);
        // The other node's checkpoint, made elsewhere and moved into place at the worst moment.
        var elsewhere = Store(temp.Combine("elsewhere"), "node-b", ShareReadBack.Never);
        var won = await elsewhere.PublishAsync(Request("ck-race", Source(temp, 4096)), null, CancellationToken.None);
        // What a share without an atomic no-replace rename allows: between the loser's check and its rename, the other
        // node's checkpoint lands under the name, and the loser's rename still says it succeeded.
        var loser = new FileSystemCheckpointStore(Options(root, "node-a", ShareReadBack.Never), TimeProvider.System)
        {
            RenameNoReplace = (_, final) =>
            {
                Directory.Move(won.Directory, final);
                return true;
            },
        };

        var error = await Should.ThrowAsync<PodMigrateException>(() => loser.PublishAsync(Request("ck-race", Source(temp)), null, CancellationToken.None));

        error.Kind.ShouldBe(ErrorKind.AlreadyExists, error.ToString());
        var stored = await winner.VerifyAsync(CheckpointId.Parse("ck-race"), CancellationToken.None);
        stored.Manifest.ArchiveSha256.ShouldBe(won.Manifest.ArchiveSha256, "the winner's checkpoint is intact");
        Directory.EnumerateFileSystemEntries(Path.Combine(winner.CheckpointsDirectory, ".staging")).ShouldBeEmpty("the loser cleans up its staging");
    }

    [Fact(Timeout = Timeout)]
    public async Task Two_nodes_racing_for_one_id_many_times_have_exactly_one_winner_each_time()
    {
        using var temp = new TempDirectory();
        var root = temp.Combine("share");
        var nodes = new[] { Store(root, "node-a", ShareReadBack.Always), Store(root, "node-b", ShareReadBack.Always) };
        var sources = new[] { Source(temp, 64 << 10), Source(temp, 64 << 10) };
        for (var round = 0; round < 10; round++)
        {
            var id = $"ck-round-{round}";
            var outcomes = await Task.WhenAll(nodes.Select((store, i) => Task.Run(async () =>
            {
                try
                {
                    await store.PublishAsync(Request(id, sources[i]), null, CancellationToken.None);
                    return (ErrorKind?)null;
                }
                catch (PodMigrateException e)
                {
                    return e.Kind;
                }
            })));
            outcomes.Count(o => o is null).ShouldBe(1, $"round {round}: {string.Join(", ", outcomes)}");
            outcomes.Where(o => o is not null).ShouldAllBe(o => o == ErrorKind.AlreadyExists);
            await nodes[0].VerifyAsync(CheckpointId.Parse(id), CancellationToken.None);
        }

        Directory.EnumerateFileSystemEntries(Path.Combine(nodes[0].CheckpointsDirectory, ".staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = Timeout)]
    public async Task Reading_back_before_the_rename_publishes_a_checkpoint_that_verifies()
    {
        using var temp = new TempDirectory();
        var store = Store(temp.Combine("share"), "node-a", ShareReadBack.Always);

        var published = await store.PublishAsync(Request("ck-readback", Source(temp, 1 << 20)), null, CancellationToken.None);

        (await store.VerifyAsync(published.Id, CancellationToken.None)).Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
    }

    [Fact(Timeout = Timeout)]
    public Task Free_space_is_known_on_a_local_disk_and_writer_names_are_file_name_safe()
    {
        using var temp = new TempDirectory();
        DurableFileSystem.TryGetAvailableBytes(temp.Path).ShouldNotBeNull().ShouldBeGreaterThan(0);
        DurableFileSystem.IsRemoteFileSystem(temp.Path).ShouldBeFalse();
        FileSystemCheckpointStore.WriterLabel("Node_A/../x").ShouldBe("node-a----x");
        FileSystemCheckpointStore.WriterLabel("").ShouldBe("writer");
        FileSystemCheckpointStore.WriterLabel(new string('n', 100)).Length.ShouldBe(40);
        return Task.CompletedTask;
    }

    [Theory(Timeout = Timeout)]
    [InlineData(5, true)]    // EIO: smbnetfs when smbd is gone or stalled past smb_timeout
    [InlineData(110, true)]  // ETIMEDOUT
    [InlineData(107, true)]  // ENOTCONN: a FUSE daemon that died
    [InlineData(116, true)]  // ESTALE (NFS)
    [InlineData(28, false)]  // ENOSPC is a full share, not a failed one
    [InlineData(2, false)]
    public Task Share_failures_are_told_from_a_full_share_by_errno(int errno, bool failed)
    {
        DurableFileSystem.IsShareFailure(new IOException("x", errno)).ShouldBe(failed);
        DurableFileSystem.IsOutOfSpace(new IOException("x", errno)).ShouldBe(errno == 28);
        return Task.CompletedTask;
    }

    private static FileSystemCheckpointStore Store(string root, string writer, ShareReadBack readBack)
        => new(Options(root, writer, readBack), TimeProvider.System);

    private static FileSystemCheckpointStoreOptions Options(string root, string writer, ShareReadBack readBack)
        => new() { Root = root, ReserveBytes = 0, Signatures = SigningKit.Agent("node-a", TimeProvider.System), WriterName = writer, ReadBack = readBack };
}
