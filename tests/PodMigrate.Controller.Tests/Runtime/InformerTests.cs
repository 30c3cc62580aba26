using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Tests.Runtime;

[Trait("Category", "Integration")]
public sealed class InformerTests
{
    private static Informer<V1Pod> NewInformer(IKubernetesApi api, InformerOptions<V1Pod>? options = null, TimeProvider? time = null)
        => new(api, KubeResources.V1Pods, options, time ?? TimeProvider.System, NullLogger<Informer<V1Pod>>.Instance);

    private static DeliveryLog<V1Pod> Log() => new(p => p.Metadata.Name!);

    [Fact]
    public async Task Sees_adds_updates_and_deletes_and_keeps_the_cache()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("a"), api.Token);
        var informer = NewInformer(api.Client);
        var log = Log();
        informer.AddHandler(log.Handler);
        // A handler that throws must not keep the others (or the cache) from seeing the changes.
        informer.AddHandler(new InformerHandler<V1Pod>(OnAdd: _ => throw new InvalidOperationException("handler bug")));
        await using var running = Background.Start(informer.RunAsync, api.Token);

        await informer.WaitForSyncAsync(api.Token);
        informer.HasSynced.ShouldBeTrue();
        log.Lines.ShouldBe(["add a"]);

        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("b"), api.Token);
        await log.WaitForAsync(l => l.Count == 2, api.Token);
        var a = await api.Client.GetAsync(KubeResources.V1Pods, "default", "a", api.Token);
        a.Metadata.Labels = new Dictionary<string, string>() { ["tier"] = "web" };
        var updated = await api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "a", a, api.Token);
        await log.WaitForAsync(l => l.Count == 3, api.Token);
        await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "b", null, api.Token);
        await log.WaitForAsync(l => l.Count == 4, api.Token);

        log.Lines.ShouldBe(["add a", "add b", "update a", "delete b"]);
        var update = log.Entries[2];
        update.Old!.Metadata.Labels.ShouldBeNull();
        update.Current.Metadata.Labels!["tier"].ShouldBe("web");
        log.Entries[3].Current.Metadata.Name.ShouldBe("b");

        informer.List().Select(p => p.Metadata.Name).ShouldBe(["a"]);
        informer.Get(new ObjectKey("default", "a"))!.Metadata.ResourceVersion.ShouldBe(updated.Metadata.ResourceVersion);
        informer.TryGet(new ObjectKey("default", "b"), out _).ShouldBeFalse();
        informer.LastSyncResourceVersion.ShouldNotBeNull();
        long.Parse(informer.LastSyncResourceVersion!).ShouldBeGreaterThanOrEqualTo(long.Parse(updated.Metadata.ResourceVersion!));

        // A handler added late gets what is cached as adds, once.
        var late = Log();
        using (informer.AddHandler(late.Handler))
        {
            late.Lines.ShouldBe(["add a"]);
        }
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("c"), api.Token);
        await log.WaitForAsync(l => l.Contains("add c"), api.Token);
        late.Lines.ShouldBe(["add a"]);
    }

    [Fact]
    public async Task Label_selector_limits_the_cache_and_an_object_that_stops_matching_is_deleted()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("x", new() { ["app"] = "x" }), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("y", new() { ["app"] = "y" }), api.Token);
        var informer = NewInformer(api.Client, new InformerOptions<V1Pod> { Namespace = "default", LabelSelector = "app=x" });
        var log = Log();
        informer.AddHandler(log.Handler);
        await using var running = Background.Start(informer.RunAsync, api.Token);
        await informer.WaitForSyncAsync(api.Token);
        log.Lines.ShouldBe(["add x"]);

        var x = await api.Client.GetAsync(KubeResources.V1Pods, "default", "x", api.Token);
        x.Metadata.Labels!["app"] = "y";
        await api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "x", x, api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("z", new() { ["app"] = "x" }), api.Token);
        await log.WaitForAsync(l => l.Count == 3, api.Token);

        log.Lines.ShouldBe(["add x", "delete x", "add z"]);
        informer.List().Select(p => p.Metadata.Name).ShouldBe(["z"]);
    }

    [Fact]
    public async Task A_watch_that_ends_is_resumed_from_the_last_resourceVersion_without_a_list()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var wire = new ControlledApi(api.Client);
        var informer = NewInformer(wire);
        var log = Log();
        informer.AddHandler(log.Handler);
        await using var running = Background.Start(informer.RunAsync, api.Token);
        await informer.WaitForSyncAsync(api.Token);
        var a = await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("a"), api.Token);
        await log.WaitForAsync(l => l.Count == 1, api.Token);

        wire.CutAndHoldWatches();
        await wire.WatchWaitingAsync(api.Token);
        // Made while nobody watches: the resumed watch replays it from the server's history.
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("b"), api.Token);
        wire.ReleaseWatches();
        await log.WaitForAsync(l => l.Count == 2, api.Token);

        log.Lines.ShouldBe(["add a", "add b"]);
        wire.ListCalls.ShouldBe(1);
        wire.GoneCount.ShouldBe(0);
        wire.WatchVersions[^1].ShouldBe(a.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task After_410_Gone_it_lists_again_and_delivers_what_the_watch_missed_exactly_once()
    {
        // A short history: a watch from a version more than 5 changes old gets 410 Gone.
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { WatchHistory = 5 });
        foreach (var name in new[] { "a", "b", "c", "d" })
        {
            await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod(name), api.Token);
        }
        var wire = new ControlledApi(api.Client);
        var informer = NewInformer(wire);
        var log = Log();
        informer.AddHandler(log.Handler);
        await using var running = Background.Start(informer.RunAsync, api.Token);
        await informer.WaitForSyncAsync(api.Token);
        log.Lines.ShouldBe(["add a", "add b", "add c", "add d"]);

        wire.CutAndHoldWatches();
        await wire.WatchWaitingAsync(api.Token);
        // The gap: b is deleted, d is deleted and created again (new uid), c changes more times than the history holds.
        await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "b", null, api.Token);
        var oldD = informer.Get(new ObjectKey("default", "d"))!;
        await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "d", null, api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("d"), api.Token);
        for (var i = 0; i < 8; i++)
        {
            var c = await api.Client.GetAsync(KubeResources.V1Pods, "default", "c", api.Token);
            c.Metadata.Labels = new Dictionary<string, string>() { ["round"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            await api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "c", c, api.Token);
        }
        wire.ReleaseWatches();

        // A change after the re-list proves the new watch runs; everything before it has been delivered by then.
        await TestPods.EventuallyAsync(() => wire.ListCalls == 2 && informer.HasSynced, api.Token);
        await TestPods.EventuallyAsync(() => wire.WatchVersions.Count >= 3, api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("e"), api.Token);
        await log.WaitForAsync(l => l.Contains("add e"), api.Token);

        wire.GoneCount.ShouldBe(1);
        wire.ListCalls.ShouldBe(2);
        log.Lines.Skip(4).Order().ShouldBe(["add d", "add e", "delete b", "delete d", "update c"]);
        log.Lines.Count(l => l == "delete b").ShouldBe(1);
        log.Entries.Single(e => e.Kind == "delete" && e.Key == "d").Current.Metadata.Uid.ShouldBe(oldD.Metadata.Uid);
        var update = log.Entries.Single(e => e.Kind == "update");
        update.Old!.Metadata.Labels.ShouldBeNull();
        update.Current.Metadata.Labels!["round"].ShouldBe("7");
        informer.List().Select(p => p.Metadata.Name).ShouldBe(["a", "c", "d", "e"]);
        informer.Get(new ObjectKey("default", "d"))!.Metadata.Uid.ShouldNotBe(oldD.Metadata.Uid);
    }

    [Fact]
    [Trait("Category", "Unit")]
    public async Task List_failures_back_off_exponentially_and_do_not_spin()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var wire = new ControlledApi(api.Client);
        wire.FailLists(3);
        var time = new TimerCountingTimeProvider();
        var informer = NewInformer(wire, new InformerOptions<V1Pod> { InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(3), BackoffJitter = 0 }, time);
        await using var running = Background.Start(informer.RunAsync, api.Token);

        // Each failure waits on the clock: 1 s, 2 s, then the cap of 3 s; no retry happens before its time.
        foreach (var (delay, calls) in new[] { (1, 1), (2, 2), (3, 3) })
        {
            // The informer's only timer is its backoff delay: the test moves the clock once that delay waits on it.
            await TestPods.EventuallyAsync(() => time.TimersCreated == calls, api.Token);
            wire.ListCalls.ShouldBe(calls);
            time.Advance(TimeSpan.FromSeconds(delay) - TimeSpan.FromMilliseconds(1));
            await Task.Delay(50, api.Token);
            wire.ListCalls.ShouldBe(calls);
            time.Advance(TimeSpan.FromMilliseconds(1));
            await TestPods.EventuallyAsync(() => wire.ListCalls == calls + 1, api.Token);
        }
        await informer.WaitForSyncAsync(api.Token);
        wire.ListCalls.ShouldBe(4);
    }

    /// <summary>
    /// The package's fake clock, counting the timers made on it: a timer made after the test moved the clock would be
    /// due later than the test expects, so the test waits for the timer first.
    /// </summary>
    private sealed class TimerCountingTimeProvider : FakeTimeProvider
    {
        private int _timersCreated;

        public int TimersCreated => Volatile.Read(ref _timersCreated);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            Interlocked.Increment(ref _timersCreated);
            return timer;
        }
    }
}
