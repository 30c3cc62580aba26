using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tests.Archive;
using static PodMigrate.Core.Tests.Store.StoreTestKit;

namespace PodMigrate.Core.Tests.Store;

/// <summary>
/// <see cref="FileSystemCheckpointStore.ExtractFollowingAsync"/> (issue 9, item 8): the target follows an archive while
/// the source still writes it, and is done only once the published manifest verified the whole; a publication that is
/// abandoned fails the follower and leaves nothing extracted (the proof of concept restored from an incomplete upload).
/// </summary>
[Trait("Category", "Unit")]
public sealed class FollowingExtractionTests
{
    private const int Timeout = 60_000;

    [Fact(Timeout = Timeout)]
    public async Task A_follower_started_before_the_publication_ends_only_with_it_and_extracts_what_was_published()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var id = CheckpointId.Parse("ck-follow");
        var source = Source(temp, 4 << 20);
        using var barrier = new BlockingProgress();
        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);

        var target = temp.Combine("prepared");
        var follow = Task.Run(() => store.ExtractFollowingAsync(id, target, CancellationToken.None));
        var publish = Task.Run(() => store.PublishAsync(Request(id.Value, source), barrier, CancellationToken.None));
        await barrier.Reached.WaitAsync(TimeSpan.FromSeconds(20));
        follow.IsCompleted.ShouldBeFalse("the follower cannot be done before the manifest is published");

        barrier.Release();
        var published = await publish.WaitAsync(TimeSpan.FromSeconds(20));
        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await clock;

        followed.Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));
    }

    [Fact(Timeout = Timeout)]
    public async Task An_abandoned_publication_fails_the_follower_and_leaves_nothing_extracted()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var id = CheckpointId.Parse("ck-abandoned");
        using var barrier = new BlockingProgress();
        using var cancelPublish = new CancellationTokenSource();
        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);

        var target = temp.Combine("prepared");
        var follow = Task.Run(() => store.ExtractFollowingAsync(id, target, CancellationToken.None));
        var publish = Task.Run(() => store.PublishAsync(Request(id.Value, Source(temp, 4 << 20)), barrier, cancelPublish.Token));
        await barrier.Reached.WaitAsync(TimeSpan.FromSeconds(20));
        // Abandoned while the follower is at it (it has extracted the first entries), not before it found the staging.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!Directory.Exists(target) && !follow.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Directory.Exists(target).ShouldBeTrue("the follower extracts while the archive is written");
        await cancelPublish.CancelAsync();
        barrier.Release();
        (await Record.ExceptionAsync(() => publish.WaitAsync(TimeSpan.FromSeconds(20)))).ShouldNotBeNull("the publication was cancelled");

        var failure = await Should.ThrowAsync<PodMigrateException>(() => follow.WaitAsync(TimeSpan.FromSeconds(20)));
        await stop.CancelAsync();
        await clock;
        failure.Kind.ShouldBe(ErrorKind.Aborted, failure.Message);
        Directory.Exists(target).ShouldBeFalse("nothing of an unpublished checkpoint stays");
    }

    /// <summary>Moves the fake clock on while the follower polls (its waits are on the store's TimeProvider).</summary>
    private static async Task PumpAsync(FakeTimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(2), cancellationToken);
                time.Advance(TimeSpan.FromMilliseconds(10));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
