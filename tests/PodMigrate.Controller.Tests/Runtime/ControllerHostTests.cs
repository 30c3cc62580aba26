using System.Collections.Concurrent;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Tests.Runtime;

[Trait("Category", "Integration")]
public sealed class ControllerHostTests
{
    [Fact]
    public async Task Informers_sync_then_the_leader_reconciles_every_object_and_releases_the_lease_when_stopped()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("before"), api.Token);
        var informer = new Informer<V1Pod>(api.Client, KubeResources.V1Pods, null, TimeProvider.System, NullLogger<Informer<V1Pod>>.Instance);
        using var queue = new WorkQueue<ObjectKey>(null, TimeProvider.System);
        informer.AddHandler(InformerHandler<V1Pod>.OnAnyChange(pod => queue.Add(ObjectKey.Of(pod.Metadata))));
        var reconciled = new ConcurrentQueue<(ObjectKey Key, bool Cached, bool Synced)>();
        var reconciler = new DelegateReconciler((key, _) =>
        {
            reconciled.Enqueue((key, informer.TryGet(key, out var cached), informer.HasSynced));
            return Task.FromResult(ReconcileResult.Done);
        });
        var runner = new ReconcileRunner("pods", reconciler, queue, workers: 2, NullLogger<ReconcileRunner>.Instance);
        var elector = new LeaderElector(api.Client, new LeaderElectionOptions
        {
            Namespace = "default",
            LeaseName = "podmigrate-controller",
            Identity = "controller-0",
            RetryPeriod = TimeSpan.FromMilliseconds(100),
        }, TimeProvider.System, NullLogger<LeaderElector>.Instance);
        var host = new ControllerHost([informer], [runner], elector, NullLogger<ControllerHost>.Instance);

        var running = Background.Start(host.RunAsync, api.Token);
        await TestPods.EventuallyAsync(() => reconciled.Any(r => r.Key.Name == "before"), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestPods.Pod("after"), api.Token);
        await TestPods.EventuallyAsync(() => reconciled.Any(r => r.Key.Name == "after"), api.Token);
        await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "before", null, api.Token);
        await TestPods.EventuallyAsync(() => reconciled.Count(r => r.Key.Name == "before") == 2, api.Token);

        reconciled.ShouldAllBe(r => r.Synced);
        reconciled.Last(r => r.Key.Name == "before").Cached.ShouldBeFalse();
        elector.IsLeader.ShouldBeTrue();

        await running.DisposeAsync();
        running.Task.IsCompletedSuccessfully.ShouldBeTrue();
        queue.IsShuttingDown.ShouldBeTrue();
        var lease = await api.LeaseAsync();
        // Released as client-go releases: an empty holder (not a missing one).
        lease.Spec.HolderIdentity.ShouldBe("");
    }

    [Fact]
    public async Task An_informer_that_stops_on_its_own_fails_the_host_instead_of_leaving_it_blind()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var informer = new Informer<V1Pod>(api.Client, KubeResources.V1Pods, null, TimeProvider.System, NullLogger<Informer<V1Pod>>.Instance);
        await using var elsewhere = Background.Start(informer.RunAsync, api.Token);
        await informer.WaitForSyncAsync(api.Token);
        using var queue = new WorkQueue<ObjectKey>(null, TimeProvider.System);
        var runner = new ReconcileRunner("pods", new DelegateReconciler((_, _) => Task.FromResult(ReconcileResult.Done)), queue, 1, NullLogger<ReconcileRunner>.Instance);
        var host = new ControllerHost([informer], [runner], elector: null, NullLogger<ControllerHost>.Instance);

        // The same informer cannot run twice: in the host it ends at once, and the host must say so.
        var error = await Should.ThrowAsync<PodMigrateException>(() => host.RunAsync(api.Token).WaitAsync(TimeSpan.FromSeconds(20), api.Token));
        error.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        queue.IsShuttingDown.ShouldBeTrue();
    }
}
