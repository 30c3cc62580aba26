using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tests.Archive;
using PodMigrate.Core.Tests.Tls;
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
        follow.IsCompleted.ShouldBeFalse($"the follower cannot be done before the manifest is published ({follow.Exception?.InnerException})");

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
        // Abandoned while the follower is at it, not before it found the staging.
        await WaitUntilExtractingAsync(target, follow);
        await cancelPublish.CancelAsync();
        barrier.Release();
        (await Record.ExceptionAsync(() => publish.WaitAsync(TimeSpan.FromSeconds(20)))).ShouldNotBeNull("the publication was cancelled");

        var failure = await Should.ThrowAsync<PodMigrateException>(() => follow.WaitAsync(TimeSpan.FromSeconds(20)));
        await stop.CancelAsync();
        await clock;
        failure.Kind.ShouldBe(ErrorKind.Aborted, failure.Message);
        Directory.Exists(target).ShouldBeFalse("nothing of an unpublished checkpoint stays");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_follower_of_a_store_nothing_was_published_to_yet_waits_for_the_first_publication()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var id = CheckpointId.Parse("ck-first");
        var source = Source(temp);
        var target = temp.Combine("prepared");

        // Called on this thread, so its first look runs now, before any writer made the store's checkpoints directory
        // (it used to fail there: statfs of a directory that does not exist yet).
        var follow = store.ExtractFollowingAsync(id, target, CancellationToken.None);
        Directory.Exists(store.CheckpointsDirectory).ShouldBeFalse();
        follow.IsCompleted.ShouldBeFalse($"the follower waits for a publication ({follow.Exception?.InnerException})");

        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);
        var published = await store.PublishAsync(Request(id.Value, source), progress: null, CancellationToken.None);
        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await clock;

        followed.Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_follower_of_a_stalled_writer_ends_with_its_callers_cancellation_and_leaves_nothing_extracted()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var id = CheckpointId.Parse("ck-stalled");
        using var barrier = new BlockingProgress();
        using var cancelFollow = new CancellationTokenSource();
        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);

        var target = temp.Combine("prepared");
        var follow = Task.Run(() => store.ExtractFollowingAsync(id, target, cancelFollow.Token));
        var publish = Task.Run(() => store.PublishAsync(Request(id.Value, Source(temp, 4 << 20)), barrier, CancellationToken.None));
        await barrier.Reached.WaitAsync(TimeSpan.FromSeconds(20));
        // The writer stays blocked (alive, its staging in place): only the caller's deadline can end the follower.
        await WaitUntilExtractingAsync(target, follow);
        await cancelFollow.CancelAsync();
        var failure = await Record.ExceptionAsync(() => follow.WaitAsync(TimeSpan.FromSeconds(20)));
        Directory.Exists(target).ShouldBeFalse("nothing of an unpublished checkpoint stays");
        failure.ShouldBeAssignableTo<OperationCanceledException>(failure?.ToString());

        barrier.Release();
        var published = await publish.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await clock;
        (await store.GetAsync(id, CancellationToken.None)).Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256, "the writer is not disturbed by a follower that gave up");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_follower_of_a_checkpoint_sealed_early_is_done_at_the_seal_before_the_publication_and_verified_whole()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var id = CheckpointId.Parse("ck-sealed");
        var source = Source(temp, 4 << 20);
        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);
        var target = temp.Combine("prepared");
        var follow = Task.Run(() => store.ExtractFollowingAsync(id, target, CancellationToken.None));

        // The writer is held right after its seal (the Sealed callback blocks it): nothing is durable or published yet.
        using var sealedReached = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var steps = new List<string>();
        var request = Request(id.Value, source) with
        {
            BeforeSeal = _ => { lock (steps) { steps.Add("before-seal"); } return Task.CompletedTask; },
            Sealed = token =>
            {
                lock (steps) { steps.Add("sealed"); }
                sealedReached.Set();
                release.Wait(TimeSpan.FromSeconds(30), token).ShouldBeTrue("the test releases the writer");
                return Task.CompletedTask;
            },
        };
        var publish = Task.Run(() => store.PublishAsync(request, progress: null, CancellationToken.None));
        sealedReached.Wait(TimeSpan.FromSeconds(20)).ShouldBeTrue($"the writer seals ({publish.Exception?.InnerException})");

        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(20));
        (await Should.ThrowAsync<PodMigrateException>(() => store.GetAsync(id, CancellationToken.None))).Kind.ShouldBe(ErrorKind.NotFound, "sealed is not published");
        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));

        release.Set();
        var published = await publish.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await clock;
        steps.ShouldBe(["before-seal", "sealed"]);
        followed.Manifest.ArchiveSha256.ShouldBe(published.Manifest.ArchiveSha256);
        followed.Manifest.CheckpointId.ShouldBe(id.Value);
        (await store.GetAsync(id, CancellationToken.None)).Manifest.ArchiveSha256.ShouldBe(followed.Manifest.ArchiveSha256, "what the follower verified against is what was published");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_sealed_manifest_signed_by_no_trusted_agent_is_refused_by_the_follower_and_nothing_stays()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var share = temp.Combine("share");
        // The writer signs with a key the follower's store does not trust (someone who can write to the share).
        var forger = new FileSystemCheckpointStore(new FileSystemCheckpointStoreOptions { Root = share, Signatures = SigningKit.Agent("node-x", time, SigningKit.NewCa("a CA nobody trusts")) }, time);
        var follower = NewStore(share, time);
        var id = CheckpointId.Parse("ck-forged");
        using var stop = new CancellationTokenSource();
        var clock = PumpAsync(time, stop.Token);
        var target = temp.Combine("prepared");
        var follow = Task.Run(() => follower.ExtractFollowingAsync(id, target, CancellationToken.None));

        using var release = new ManualResetEventSlim();
        var request = Request(id.Value, Source(temp, 1 << 20)) with
        {
            BeforeSeal = _ => Task.CompletedTask,
            Sealed = token => Task.FromResult(release.Wait(TimeSpan.FromSeconds(30), token)),
        };
        var publish = Task.Run(() => forger.PublishAsync(request, progress: null, CancellationToken.None));
        var failure = await Should.ThrowAsync<PodMigrateException>(() => follow.WaitAsync(TimeSpan.FromSeconds(20)));
        release.Set();
        await publish.WaitAsync(TimeSpan.FromSeconds(20));
        await stop.CancelAsync();
        await clock;
        failure.Kind.ShouldBe(ErrorKind.PermissionDenied, failure.Message);
        Directory.Exists(target).ShouldBeFalse("nothing of a refused checkpoint stays");
    }

    /// <summary>Waits (20 s of wall time at most) until the follower found the writer's staging and extracts into <paramref name="target"/>.</summary>
    private static async Task WaitUntilExtractingAsync(string target, Task follow)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!Directory.Exists(target) && !follow.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Directory.Exists(target).ShouldBeTrue($"the follower extracts while the archive is written ({follow.Exception?.InnerException})");
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
