using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Tests.Runtime;

[Trait("Category", "Unit")]
public sealed class ReconcileRunnerTests
{
    private static readonly ObjectKey Key = new("default", "m1");

    [Fact]
    public async Task A_failing_reconcile_is_logged_with_its_key_and_retried_with_growing_delays_until_it_succeeds()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<ObjectKey>(null, time);
        var logger = new ListLogger<ReconcileRunner>();
        var calls = 0;
        var reconciler = new DelegateReconciler((key, _) => Interlocked.Increment(ref calls) switch
        {
            1 => throw PodMigrateException.Unavailable("agent on node-b is unreachable"),
            2 => throw new InvalidOperationException("a bug"),
            _ => Task.FromResult(ReconcileResult.Done),
        });
        var runner = new ReconcileRunner("migrations", reconciler, queue, workers: 2, logger);
        await using var running = Background.Start(runner.RunAsync, deadline.Token);

        queue.Add(Key);
        await TestPods.EventuallyAsync(() => Volatile.Read(ref calls) == 1 && queue.WaitingCount == 1 && queue.ProcessingCount == 0, deadline.Token);
        queue.NumRequeues(Key).ShouldBe(1);
        time.Advance(TimeSpan.FromMilliseconds(4));
        await Task.Delay(50, deadline.Token);
        Volatile.Read(ref calls).ShouldBe(1);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await TestPods.EventuallyAsync(() => Volatile.Read(ref calls) == 2 && queue.WaitingCount == 1 && queue.ProcessingCount == 0, deadline.Token);
        queue.NumRequeues(Key).ShouldBe(2);
        time.Advance(TimeSpan.FromMilliseconds(9));
        await Task.Delay(50, deadline.Token);
        Volatile.Read(ref calls).ShouldBe(2);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await TestPods.EventuallyAsync(() => Volatile.Read(ref calls) == 3 && queue.ProcessingCount == 0, deadline.Token);

        // Success forgets the backoff; nothing more is queued.
        queue.NumRequeues(Key).ShouldBe(0);
        queue.WaitingCount.ShouldBe(0);
        var failures = logger.Entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        failures.Count.ShouldBe(2);
        failures[0].Message.ShouldContain("default/m1");
        failures[0].Message.ShouldContain("Unavailable");
        failures[0].Message.ShouldContain("agent on node-b is unreachable");
        failures[1].Level.ShouldBe(LogLevel.Error);
        failures[1].Message.ShouldContain("default/m1");
        failures[1].Exception.ShouldBeOfType<InvalidOperationException>();
    }

    [Fact]
    public async Task A_reconcile_that_asks_to_be_called_again_is_queued_after_its_delay()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<ObjectKey>(null, time);
        var calls = 0;
        var reconciler = new DelegateReconciler((_, _) => Task.FromResult(
            Interlocked.Increment(ref calls) == 1 ? ReconcileResult.After(TimeSpan.FromSeconds(30)) : ReconcileResult.Done));
        var runner = new ReconcileRunner("migrations", reconciler, queue, workers: 1, new ListLogger<ReconcileRunner>());
        await using var running = Background.Start(runner.RunAsync, deadline.Token);

        queue.Add(Key);
        await TestPods.EventuallyAsync(() => queue.WaitingCount == 1 && queue.ProcessingCount == 0, deadline.Token);
        time.Advance(TimeSpan.FromSeconds(29));
        await Task.Delay(50, deadline.Token);
        Volatile.Read(ref calls).ShouldBe(1);
        time.Advance(TimeSpan.FromSeconds(1));
        await TestPods.EventuallyAsync(() => Volatile.Read(ref calls) == 2 && queue.ProcessingCount == 0, deadline.Token);
        queue.WaitingCount.ShouldBe(0);
    }

    [Fact]
    public async Task Stopping_cancels_the_reconciles_in_flight_waits_for_them_and_keeps_their_keys_for_the_next_run()
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var queue = new WorkQueue<ObjectKey>(null, TimeProvider.System);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new ConcurrentQueue<string>();
        var reconciler = new DelegateReconciler(async (key, ct) =>
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            finally
            {
                finished.Enqueue(key.Name);
            }
            return ReconcileResult.Done;
        });
        var runner = new ReconcileRunner("migrations", reconciler, queue, workers: 2, new ListLogger<ReconcileRunner>());
        var running = Background.Start(runner.RunAsync, deadline.Token);
        queue.Add(Key);
        await started.Task.WaitAsync(deadline.Token);

        await running.StopAsync();
        running.Task.IsCompletedSuccessfully.ShouldBeTrue();
        finished.ShouldBe(["m1"]);
        queue.ProcessingCount.ShouldBe(0);
        queue.Count.ShouldBe(1);
        queue.NumRequeues(Key).ShouldBe(0);
        await running.DisposeAsync();
    }

    [Fact]
    public async Task A_key_handed_to_a_worker_while_stopping_is_not_reconciled_on_the_cancelled_token_and_stays_queued()
    {
        // The reconcile of m1 adds m2 from inside the stop's cancellation, before the idle worker's getter sees it (a
        // token runs its callbacks newest first, and m1's is registered after the idle worker parked): the queue hands
        // m2 to that getter. It must go back to the queue, not into a reconcile that is cancelled from birth.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var queue = new WorkQueue<ObjectKey>(null, TimeProvider.System);
        var second = new ObjectKey("default", "m2");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var parked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconciled = new ConcurrentQueue<string>();
        var reconciler = new DelegateReconciler(async (key, ct) =>
        {
            reconciled.Enqueue(key.Name);
            started.TrySetResult();
            await parked.Task.WaitAsync(ct);
            using var addOnStop = ct.Register(() => queue.Add(second));
            registered.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return ReconcileResult.Done;
        });
        var runner = new ReconcileRunner("migrations", reconciler, queue, workers: 2, new ListLogger<ReconcileRunner>());
        var running = Background.Start(runner.RunAsync, deadline.Token);
        queue.Add(Key);
        await started.Task.WaitAsync(deadline.Token);
        while (queue.GettersWaiting < 1)
        {
            await Task.Delay(5, deadline.Token);
        }
        parked.SetResult();
        await registered.Task.WaitAsync(deadline.Token);

        await running.StopAsync();
        reconciled.ShouldBe(["m1"]);
        queue.ProcessingCount.ShouldBe(0);
        queue.Count.ShouldBe(2);
        await running.DisposeAsync();
    }
}
