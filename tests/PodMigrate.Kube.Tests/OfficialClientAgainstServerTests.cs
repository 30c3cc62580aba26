using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using PodMigrate.Kube.ApiServer;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// The in-process API server against the official KubernetesClient's own typed API and models (V1Pod, V1Lease, Corev1Event,
/// V1Binding), as any .NET program would talk to a cluster: the server is proven against this client as well as kubectl.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OfficialClientAgainstServerTests
{
    private static V1Pod Pod(string name, string? nodeName = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["app"] = name } },
        Spec = new V1PodSpec
        {
            NodeName = nodeName,
            Containers = [new V1Container { Name = "main", Image = "localhost:5000/podmigrate/counter:1" }],
        },
    };

    [Fact]
    public async Task Typed_pod_calls_create_read_list_patch_and_delete()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { BearerToken = "s3cret", UseTls = true });
        using var client = new Kubernetes(api.Server.ClientConfig);

        var created = await client.CoreV1.CreateNamespacedPodAsync(Pod("counter"), "default", cancellationToken: api.Token);
        created.Metadata.Uid.ShouldNotBeNullOrEmpty();
        created.Status.Phase.ShouldBe("Pending");

        var read = await client.CoreV1.ReadNamespacedPodAsync("counter", "default", cancellationToken: api.Token);
        read.Metadata.ResourceVersion.ShouldBe(created.Metadata.ResourceVersion);

        var list = await client.CoreV1.ListNamespacedPodAsync("default", labelSelector: "app=counter", cancellationToken: api.Token);
        list.Items.Select(p => p.Metadata.Name).ShouldBe(["counter"]);
        list.Metadata.ResourceVersion.ShouldNotBeNullOrEmpty();

        var patched = await client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"tier":"web"}}}""", V1Patch.PatchType.StrategicMergePatch),
            "counter", "default", cancellationToken: api.Token);
        patched.Metadata.Labels["tier"].ShouldBe("web");
        var merged = await client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"annotations":{"a":"1"}}}""", V1Patch.PatchType.MergePatch),
            "counter", "default", cancellationToken: api.Token);
        merged.Metadata.Annotations["a"].ShouldBe("1");
        var running = await client.CoreV1.PatchNamespacedPodStatusAsync(new V1Patch("""{"status":{"phase":"Running"}}""", V1Patch.PatchType.MergePatch),
            "counter", "default", cancellationToken: api.Token);
        running.Status.Phase.ShouldBe("Running");

        await client.CoreV1.DeleteNamespacedPodAsync("counter", "default", new V1DeleteOptions { GracePeriodSeconds = 0 }, cancellationToken: api.Token);
        var gone = await Should.ThrowAsync<HttpOperationException>(() => client.CoreV1.ReadNamespacedPodAsync("counter", "default", cancellationToken: api.Token));
        gone.Response.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_binding_assigns_the_node_and_a_second_one_conflicts()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var client = new Kubernetes(api.Server.ClientConfig);
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = "node-a" } }, cancellationToken: api.Token);
        await client.CoreV1.CreateNamespacedPodAsync(Pod("bound"), "default", cancellationToken: api.Token);

        var binding = new V1Binding
        {
            Metadata = new V1ObjectMeta { Name = "bound" },
            Target = new V1ObjectReference { Kind = "Node", Name = "node-a" },
        };
        await client.CoreV1.CreateNamespacedPodBindingAsync(binding, "bound", "default", cancellationToken: api.Token);
        (await client.CoreV1.ReadNamespacedPodAsync("bound", "default", cancellationToken: api.Token)).Spec.NodeName.ShouldBe("node-a");

        var again = await Should.ThrowAsync<HttpOperationException>(() => client.CoreV1.CreateNamespacedPodBindingAsync(binding, "bound", "default", cancellationToken: api.Token));
        again.Response.StatusCode.ShouldBe(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task The_package_watch_streams_typed_events_and_reports_an_expired_version_as_a_status()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { WatchHistory = 3 });
        using var client = new Kubernetes(api.Server.ClientConfig);
        var first = await client.CoreV1.CreateNamespacedPodAsync(Pod("p0"), "default", cancellationToken: api.Token);

        var events = new List<string>();
        var watch = Task.Run(async () =>
        {
            await foreach (var (type, pod) in client.CoreV1.WatchListNamespacedPodAsync("default", resourceVersion: first.Metadata.ResourceVersion,
                timeoutSeconds: 30, cancellationToken: api.Token))
            {
                events.Add($"{type} {pod.Metadata.Name}");
                if (type == WatchEventType.Deleted)
                {
                    return;
                }
            }
        }, api.Token);
        await client.CoreV1.CreateNamespacedPodAsync(Pod("p1"), "default", cancellationToken: api.Token);
        await client.CoreV1.DeleteNamespacedPodAsync("p1", "default", new V1DeleteOptions { GracePeriodSeconds = 0 }, cancellationToken: api.Token);
        await watch.WaitAsync(api.Token);
        events.ShouldBe(["Added p1", "Deleted p1"]);

        // Push p0's version out of the server's watch history: a watch from it gets an ERROR event with a 410 Status.
        for (var i = 2; i < 7; i++)
        {
            await client.CoreV1.CreateNamespacedPodAsync(Pod($"p{i}"), "default", cancellationToken: api.Token);
        }
        var errors = new List<Exception>();
        await foreach (var _ in client.CoreV1.WatchListNamespacedPodAsync("default", resourceVersion: first.Metadata.ResourceVersion, timeoutSeconds: 5,
            onError: errors.Add, cancellationToken: api.Token))
        {
        }
        errors.ShouldHaveSingleItem().ShouldBeOfType<KubernetesException>().Status.Code.ShouldBe(410);
    }

    [Fact]
    public async Task Leases_and_events_round_trip_through_the_typed_models()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var client = new Kubernetes(api.Server.ClientConfig);
        var now = DateTime.UtcNow;
        var lease = await client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = "podmigrate-controller" },
            Spec = new V1LeaseSpec { HolderIdentity = "controller-0", LeaseDurationSeconds = 15, RenewTime = now, AcquireTime = now },
        }, "kube-system", cancellationToken: api.Token);
        lease.Spec.HolderIdentity.ShouldBe("controller-0");
        lease.Spec.RenewTime!.Value.ShouldBe(now, TimeSpan.FromMilliseconds(1));

        lease.Spec.HolderIdentity = "";
        var released = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, "podmigrate-controller", "kube-system", cancellationToken: api.Token);
        released.Spec.HolderIdentity.ShouldBe("");
        lease.Spec.HolderIdentity = "stale";
        var conflict = await Should.ThrowAsync<HttpOperationException>(() =>
            client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, "podmigrate-controller", "kube-system", cancellationToken: api.Token));
        conflict.Response.StatusCode.ShouldBe(HttpStatusCode.Conflict);

        await client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = "counter." },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "counter", NamespaceProperty = "default" },
            Reason = "Checkpointed",
            Message = "checkpoint c1 written",
            Type = "Normal",
        }, "default", cancellationToken: api.Token);
        var events = await client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: "involvedObject.name=counter", cancellationToken: api.Token);
        events.Items.ShouldHaveSingleItem().Reason.ShouldBe("Checkpointed");
    }
}
