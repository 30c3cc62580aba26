using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tls;
using PodMigrate.TestKit.Share;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Integration.Tests.Share;

/// <summary>One SMB share (Samba on loopback, a 48 MiB tmpfs behind it) mounted through smbnetfs at two "nodes".</summary>
public sealed class SmbShareFixture : IAsyncLifetime
{
    public SmbShare Share { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        Share = await SmbShare.StartAsync(["node-a", "node-b"], "48M", timeout.Token);
    }

    public async Task DisposeAsync() => await Share.DisposeAsync();
}

/// <summary>
/// The checkpoint store on a real SMB share, each node through its own FUSE mount: what one node publishes the other
/// reads whole and verified; two nodes racing for one id never both win (O_EXCL and RENAME_NOREPLACE do not hold there);
/// statvfs's 0 does not refuse a publish; a full share is ResourceExhausted with nothing published; a server stopped
/// mid-write is a clear error within a bound, with nothing published.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Samba")]
public sealed class SmbShareStoreTests(SmbShareFixture fixture) : IClassFixture<SmbShareFixture>
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(100);

    private SmbShare Share => fixture.Share;

    [Fact(Timeout = 120_000)]
    public async Task A_checkpoint_published_at_one_node_is_read_whole_and_verified_at_the_other()
    {
        using var cts = new CancellationTokenSource(Budget);
        using var temp = new TempTree();
        var (a, b) = (Store("node-a"), Store("node-b"));
        DurableFileSystem.TryGetAvailableBytes(Share.MountOf("node-a")).ShouldBeNull("smbnetfs reports 0 blocks: free space unknown");
        var source = temp.Staged("src", 3 << 20);

        var published = await a.PublishAsync(Request("ck-smb-cross", source), null, cts.Token);

        var seen = await b.VerifyAsync(published.Id, cts.Token);
        seen.Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
        await b.ExtractAsync(published.Id, temp.Path("restored"), cts.Token);
        File.ReadAllBytes(temp.Path("restored", "checkpoint", "pages-1.img")).ShouldBe(File.ReadAllBytes(Path.Combine(source, "checkpoint", "pages-1.img")));
        // The server enforces what the client cannot show: 0600 files on its disk, whatever mode smbnetfs makes up.
        DurableFileSystem.GetMode(Path.Combine(Share.ServerPath, "checkpoints", "ck-smb-cross", "archive.tar.zst")).ShouldBe(DurableFileSystem.PrivateFileMode);
        await b.DeleteAsync(published.Id, force: true, cts.Token);
        (await a.ListAsync(null, cts.Token)).ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task Two_nodes_racing_for_one_id_have_exactly_one_winner_every_time()
    {
        using var cts = new CancellationTokenSource(Budget);
        using var temp = new TempTree();
        var nodes = new[] { Store("node-a"), Store("node-b") };
        var sources = new[] { temp.Staged("a", 256 << 10), temp.Staged("b", 256 << 10) };
        for (var round = 0; round < 12; round++)
        {
            var id = $"ck-smb-race-{round}";
            var outcomes = await Task.WhenAll(nodes.Select((store, i) => Task.Run(async () =>
            {
                try
                {
                    return (await store.PublishAsync(Request(id, sources[i]), null, cts.Token)).Manifest.ArchiveSha256;
                }
                catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
                {
                    return null;
                }
            })));
            var winners = outcomes.OfType<string>().ToList();
            winners.Count.ShouldBe(1, $"round {round}: both or neither won");
            (await nodes[1 - Array.FindIndex(outcomes, o => o is not null)].VerifyAsync(CheckpointId.Parse(id), cts.Token)).Manifest.ArchiveSha256.ShouldBe(winners[0]);
            await nodes[0].DeleteAsync(CheckpointId.Parse(id), force: true, cts.Token);
        }
        Directory.EnumerateFileSystemEntries(Path.Combine(Share.ServerPath, "checkpoints", ".staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task A_full_share_is_resource_exhausted_and_nothing_is_published()
    {
        using var cts = new CancellationTokenSource(Budget);
        using var temp = new TempTree();
        var a = Store("node-a");
        var tooBig = temp.Staged("big", 64 << 20); // random pages: 64 MiB do not compress, the tmpfs holds 48

        var error = await Should.ThrowAsync<PodMigrateException>(() => a.PublishAsync(Request("ck-smb-full", tooBig), null, cts.Token));

        error.Kind.ShouldBe(ErrorKind.ResourceExhausted, error.ToString());
        (await Store("node-b").ListAsync(null, cts.Token)).ShouldBeEmpty();
        Directory.EnumerateFileSystemEntries(Path.Combine(Share.ServerPath, "checkpoints", ".staging")).ShouldBeEmpty("the partial archive is removed");
        await a.PublishAsync(Request("ck-smb-after-full", temp.Staged("small", 1 << 20)), null, cts.Token);
        await a.DeleteAsync(CheckpointId.Parse("ck-smb-after-full"), force: true, cts.Token);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_server_stopped_mid_write_is_a_clear_error_within_a_bound_and_nothing_is_published()
    {
        using var cts = new CancellationTokenSource(Budget);
        using var temp = new TempTree();
        var a = Store("node-a");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var progress = new BlockingOnce(reached, release.Task);
        var publish = Task.Run(() => a.PublishAsync(Request("ck-smb-down", temp.Staged("src", 16 << 20)), progress, cts.Token));
        await reached.Task.WaitAsync(cts.Token);
        PodMigrateException error;
        var clock = Stopwatch.StartNew();
        try
        {
            await Share.StopServerAsync(cts.Token);
            release.SetResult();
            error = await Should.ThrowAsync<PodMigrateException>(publish);
            clock.Stop();
        }
        finally
        {
            release.TrySetResult();
            await Share.StartServerAsync(CancellationToken.None);
            // The other tests share these mounts: wait until both write again after the server's restart (a mount's
            // first operations after it can still fail with EIO).
            foreach (var node in new[] { "node-a", "node-b" })
            {
                await WaitUntilAsync(() =>
                {
                    var probe = Path.Combine(Share.MountOf(node), $".probe-{Guid.NewGuid():N}");
                    Directory.CreateDirectory(probe);
                    Directory.Delete(probe);
                    return Task.CompletedTask;
                }, cts.Token);
            }
        }

        error.Kind.ShouldBe(ErrorKind.Aborted, error.ToString());
        error.Message.ShouldContain("nothing was published");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(40), "smbnetfs gives up after smb_timeout (10 s)");
        // The mounts recover with the server; nothing was published.
        var b = Store("node-b");
        await WaitUntilAsync(() => b.ListAsync(null, cts.Token), cts.Token);
        (await b.ListAsync(null, cts.Token)).ShouldBeEmpty();
        (await b.CleanupStagingAsync(TimeSpan.Zero, cts.Token)).ShouldBeInRange(0, 1, "at most the failed writer's staging is left, never listed");
        Directory.EnumerateDirectories(Path.Combine(Share.ServerPath, "checkpoints")).Select(Path.GetFileName).ShouldBe([".staging"]);
    }

    private static async Task WaitUntilAsync(Func<Task> attempt, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await attempt();
                return;
            }
            catch (IOException)
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    private FileSystemCheckpointStore Store(string node)
        => new(new FileSystemCheckpointStoreOptions
        {
            Root = Share.MountOf(node),
            WriterName = node,
            Signatures = CheckpointSignatures.FromFiles(
                TlsCertificateFiles.ForDirectory(TestSigning.Shared.AgentDirectory(node), TimeProvider.System, NullLogger.Instance), allowUnsigned: false, TimeProvider.System),
        }, TimeProvider.System);

    private static CheckpointPublishRequest Request(string id, string source) => new()
    {
        Id = CheckpointId.Parse(id),
        SourceDirectory = source,
        SourceNode = "node-a",
        Pod = new PodReference("default", "counter", "uid-counter"),
    };

    /// <summary>Blocks the writer at its first progress report (some of the archive written) until released.</summary>
    private sealed class BlockingOnce(TaskCompletionSource reached, Task release) : IProgress<ArchiveProgress>
    {
        public void Report(ArchiveProgress value)
        {
            if (reached.TrySetResult())
            {
                release.Wait(TimeSpan.FromSeconds(60));
            }
        }
    }

    private sealed class TempTree : IDisposable
    {
        private readonly string _root = Directory.CreateTempSubdirectory("pm-smb-src-").FullName;

        public string Path(params string[] parts) => System.IO.Path.Combine([_root, .. parts]);

        /// <summary>A staged checkpoint directory: random (incompressible) pages of <paramref name="bytes"/> and a small file.</summary>
        public string Staged(string name, int bytes)
        {
            var root = Path(name);
            Directory.CreateDirectory(System.IO.Path.Combine(root, "checkpoint"));
            var pages = new byte[bytes];
            Random.Shared.NextBytes(pages);
            File.WriteAllBytes(System.IO.Path.Combine(root, "checkpoint", "pages-1.img"), pages);
            File.WriteAllText(System.IO.Path.Combine(root, "checkpoint", "inventory.img"), "inventory");
            return root;
        }

        public void Dispose() => Directory.Delete(_root, recursive: true);
    }
}
