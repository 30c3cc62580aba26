using System.Collections.Concurrent;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Tests.Runtime;

[Trait("Category", "Unit")]
public sealed class WorkQueueTests
{
    private static CancellationTokenSource Deadline() => new(TimeSpan.FromSeconds(30));

    [Fact]
    public async Task A_key_queued_twice_is_handed_out_once_in_first_add_order()
    {
        using var deadline = Deadline();
        using var queue = new WorkQueue<string>(null, new FakeTimeProvider());
        queue.Add("a");
        queue.Add("a");
        queue.Add("b");
        queue.Add("a");
        queue.Count.ShouldBe(2);

        (await queue.GetAsync(deadline.Token)).ShouldBe((false, "a"));
        (await queue.GetAsync(deadline.Token)).ShouldBe((false, "b"));
        queue.Count.ShouldBe(0);
        queue.ProcessingCount.ShouldBe(2);
        queue.Done("a");
        queue.Done("b");
        queue.Count.ShouldBe(0);
    }

    [Fact]
    public async Task A_key_added_while_processing_is_not_handed_out_until_done_and_then_once()
    {
        using var deadline = Deadline();
        using var queue = new WorkQueue<string>(null, new FakeTimeProvider());
        queue.Add("a");
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("a");

        queue.Add("a");
        queue.Add("a");
        queue.Count.ShouldBe(0);
        var second = queue.GetAsync(deadline.Token);
        await Task.Delay(50, deadline.Token);
        second.IsCompleted.ShouldBeFalse();

        queue.Done("a");
        (await second).ShouldBe((false, "a"));
        queue.Done("a");
        queue.Count.ShouldBe(0);
        Should.Throw<PodMigrateException>(() => queue.Done("a")).Kind.ShouldBe(ErrorKind.FailedPrecondition);
    }

    [Fact]
    public async Task Under_concurrent_adds_each_key_is_reconciled_by_one_worker_at_a_time_and_no_add_is_lost()
    {
        using var deadline = Deadline();
        using var queue = new WorkQueue<ObjectKey>(null, TimeProvider.System);
        var keys = Enumerable.Range(0, 6).Select(i => new ObjectKey("default", $"k{i}")).ToArray();
        var version = new ConcurrentDictionary<ObjectKey, int>();
        var seen = new ConcurrentDictionary<ObjectKey, int>();
        var inFlight = new ConcurrentDictionary<ObjectKey, int>();
        var overlaps = 0;
        var reconciler = new DelegateReconciler(async (key, ct) =>
        {
            if (inFlight.AddOrUpdate(key, 1, (_, n) => n + 1) > 1)
            {
                Interlocked.Increment(ref overlaps);
            }
            // What a level-triggered reconcile reads at its start is what it acts on.
            seen[key] = version.GetValueOrDefault(key);
            await Task.Delay(1, ct);
            inFlight.AddOrUpdate(key, 0, (_, n) => n - 1);
            return ReconcileResult.Done;
        });
        var runner = new ReconcileRunner("test", reconciler, queue, workers: 4, new ListLogger<ReconcileRunner>());
        await using var running = Background.Start(runner.RunAsync, deadline.Token);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(producer => Task.Run(async () =>
        {
            for (var i = 0; i < 150; i++)
            {
                var key = keys[(i * 7 + producer) % keys.Length];
                version.AddOrUpdate(key, 1, (_, n) => n + 1);
                queue.Add(key);
                if (i % 10 == 0)
                {
                    await Task.Yield();
                }
            }
        }, deadline.Token)));

        await TestPods.EventuallyAsync(() => keys.All(k => seen.GetValueOrDefault(k) == version[k]) && queue.Count == 0 && queue.ProcessingCount == 0, deadline.Token);
        overlaps.ShouldBe(0);
    }

    [Fact]
    public void Rate_limited_delays_double_per_failure_up_to_the_cap_and_forget_starts_over()
    {
        using var queue = new WorkQueue<string>(null, new FakeTimeProvider());
        var delays = Enumerable.Range(0, 4).Select(_ => queue.AddRateLimited("a")).ToArray();
        delays.ShouldBe([TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(40)]);
        queue.NumRequeues("a").ShouldBe(4);
        queue.AddRateLimited("b").ShouldBe(TimeSpan.FromMilliseconds(5));

        for (var i = 0; i < 100; i++)
        {
            queue.AddRateLimited("a");
        }
        queue.AddRateLimited("a").ShouldBe(TimeSpan.FromMinutes(5));

        queue.Forget("a");
        queue.NumRequeues("a").ShouldBe(0);
        queue.AddRateLimited("a").ShouldBe(TimeSpan.FromMilliseconds(5));
        queue.NumRequeues("b").ShouldBe(1);
    }

    [Fact]
    public async Task A_rate_limited_key_is_queued_when_its_delay_has_passed_and_not_before()
    {
        using var deadline = Deadline();
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(null, time);
        queue.AddRateLimited("a");
        queue.WaitingCount.ShouldBe(1);
        time.Advance(TimeSpan.FromMilliseconds(4));
        queue.Count.ShouldBe(0);
        time.Advance(TimeSpan.FromMilliseconds(1));
        queue.Count.ShouldBe(1);
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("a");
        queue.Done("a");

        queue.AddRateLimited("a").ShouldBe(TimeSpan.FromMilliseconds(10));
        time.Advance(TimeSpan.FromMilliseconds(9));
        queue.Count.ShouldBe(0);
        time.Advance(TimeSpan.FromMilliseconds(1));
        queue.Count.ShouldBe(1);
    }

    [Fact]
    public async Task Add_after_queues_at_the_earliest_time_asked_once()
    {
        using var deadline = Deadline();
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(null, time);
        queue.AddAfter("a", TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromMilliseconds(999));
        queue.Count.ShouldBe(0);
        time.Advance(TimeSpan.FromMilliseconds(1));
        queue.Count.ShouldBe(1);

        // Later then sooner: the sooner wins, and the later does not add it a second time.
        queue.AddAfter("b", TimeSpan.FromSeconds(10));
        queue.AddAfter("b", TimeSpan.FromSeconds(2));
        queue.AddAfter("b", TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(2));
        queue.Count.ShouldBe(2);
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("a");
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("b");
        queue.Done("a");
        queue.Done("b");
        time.Advance(TimeSpan.FromSeconds(10));
        queue.Count.ShouldBe(0);
        queue.WaitingCount.ShouldBe(0);

        // A key already queued stays queued once when its delay passes.
        queue.Add("c");
        queue.AddAfter("c", TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        queue.Count.ShouldBe(1);
        queue.AddAfter("d", TimeSpan.Zero);
        queue.Count.ShouldBe(2);
    }

    [Fact]
    public async Task Shutdown_releases_idle_workers_drops_pending_keys_and_waits_for_the_ones_in_flight()
    {
        using var deadline = Deadline();
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(null, time);
        queue.Add("busy");
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("busy");
        var idle = queue.GetAsync(deadline.Token);
        queue.AddAfter("later", TimeSpan.FromSeconds(1));

        var drained = queue.ShutDownAsync(deadline.Token);
        (await idle).Shutdown.ShouldBeTrue();
        queue.Add("ignored");
        queue.Count.ShouldBe(0);
        queue.WaitingCount.ShouldBe(0);
        time.Advance(TimeSpan.FromSeconds(2));
        queue.Count.ShouldBe(0);
        await Task.Delay(50, deadline.Token);
        drained.IsCompleted.ShouldBeFalse();

        queue.Done("busy");
        await drained;
        (await queue.GetAsync(deadline.Token)).Shutdown.ShouldBeTrue();
    }

    [Fact]
    public async Task A_cancelled_get_takes_no_key()
    {
        using var deadline = Deadline();
        using var queue = new WorkQueue<string>(null, new FakeTimeProvider());
        using var cancel = new CancellationTokenSource();
        var get = queue.GetAsync(cancel.Token);
        await cancel.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => get);
        queue.Add("a");
        queue.Count.ShouldBe(1);
        (await queue.GetAsync(deadline.Token)).Key.ShouldBe("a");
    }
}

/// <summary>A reconciler made of a function, for tests.</summary>
internal sealed class DelegateReconciler(Func<ObjectKey, CancellationToken, Task<ReconcileResult>> reconcile) : IReconciler
{
    public Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken cancellationToken) => reconcile(key, cancellationToken);
}
