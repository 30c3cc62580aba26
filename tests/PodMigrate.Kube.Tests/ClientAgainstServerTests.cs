using System.Text.Json;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Tests;

/// <summary>The typed client (KubernetesClient underneath) against the in-process API server over real HTTP.</summary>
[Trait("Category", "Integration")]
public sealed class ClientAgainstServerTests
{
    private static readonly ResourceKind<CustomResource> Migrations = KubeResources.Custom("podmigrate.io", "v1alpha1", "podmigrations", "PodMigration");

    [Fact]
    public async Task Create_get_list_replace_and_delete_a_pod_with_defaults_and_unknown_fields_kept()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var pod = TestObjects.Pod("counter", new() { ["app"] = "counter" });
        pod.Spec.Priority = 7;

        var created = await api.Client.CreateAsync(KubeResources.V1Pods, "default", pod, api.Token);
        created.Metadata.Uid.ShouldNotBeNullOrEmpty();
        created.Metadata.CreationTimestamp.ShouldNotBeNull();
        created.Metadata.ResourceVersion.ShouldNotBeNullOrEmpty();
        created.Status!.Phase.ShouldBe("Pending");

        var fetched = await api.Client.GetAsync(KubeResources.V1Pods, "default", "counter", api.Token);
        fetched.Spec.Priority.ShouldBe(7);
        fetched.Metadata.Uid.ShouldBe(created.Metadata.Uid);

        fetched.Metadata.Labels!["tier"] = "web";
        var replaced = await api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "counter", fetched, api.Token);
        long.Parse(replaced.Metadata.ResourceVersion!).ShouldBeGreaterThan(long.Parse(created.Metadata.ResourceVersion!));
        replaced.Spec.Priority.ShouldBe(7);

        var list = await api.Client.ListAsync(KubeResources.V1Pods, null, null, api.Token);
        list.Items.Select(p => p.Key()).ShouldBe(["default/counter"]);
        list.Metadata.ResourceVersion.ShouldBe(replaced.Metadata.ResourceVersion);

        var deleted = await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "counter", null, api.Token);
        deleted.ShouldNotBeNull().Metadata.Name.ShouldBe("counter");
        var gone = await Should.ThrowAsync<PodMigrateException>(() => api.Client.GetAsync(KubeResources.V1Pods, "default", "counter", api.Token));
        gone.Kind.ShouldBe(ErrorKind.NotFound);
        gone.KubeStatus()!.Reason.ShouldBe("NotFound");
    }

    [Fact]
    public async Task Errors_map_to_kinds_already_exists_conflict_not_found_and_missing_namespace()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var created = await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("a"), api.Token);

        var duplicate = await Should.ThrowAsync<PodMigrateException>(() => api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("a"), api.Token));
        duplicate.Kind.ShouldBe(ErrorKind.AlreadyExists);
        duplicate.IsConflict().ShouldBeFalse();

        // Someone else writes first: our copy's resourceVersion is stale.
        var theirs = await api.Client.GetAsync(KubeResources.V1Pods, "default", "a", api.Token);
        theirs.Metadata.Labels = new Dictionary<string, string> { ["by"] = "them" };
        await api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "a", theirs, api.Token);
        created.Metadata.Labels = new Dictionary<string, string> { ["by"] = "us" };
        var conflict = await Should.ThrowAsync<PodMigrateException>(() => api.Client.ReplaceAsync(KubeResources.V1Pods, "default", "a", created, api.Token));
        conflict.Kind.ShouldBe(ErrorKind.Aborted);
        conflict.IsConflict().ShouldBeTrue();
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "a", api.Token)).Metadata.Labels!["by"].ShouldBe("them");

        var stalePatch = await Should.ThrowAsync<PodMigrateException>(() => api.Client.PatchAsync(KubeResources.V1Pods, "default", "a", PatchType.MergePatch,
            "{\"metadata\":{\"resourceVersion\":\"" + created.Metadata.ResourceVersion + "\",\"labels\":{\"by\":\"us\"}}}", status: false, api.Token));
        stalePatch.IsConflict().ShouldBeTrue();

        var precondition = await Should.ThrowAsync<PodMigrateException>(() => api.Client.DeleteAsync(KubeResources.V1Pods, "default", "a",
            new DeleteOptions { Preconditions = new Preconditions { Uid = Guid.NewGuid().ToString() } }, api.Token));
        precondition.Kind.ShouldBe(ErrorKind.Aborted);

        var noNamespace = await Should.ThrowAsync<PodMigrateException>(() => api.Client.CreateAsync(KubeResources.V1Pods, "nowhere", TestObjects.Pod("b"), api.Token));
        noNamespace.Kind.ShouldBe(ErrorKind.NotFound);
        noNamespace.Message.ShouldContain("nowhere");
    }

    [Fact]
    public async Task Label_and_field_selectors_filter_lists()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("web-a", new() { ["app"] = "web", ["env"] = "prod" }, "node-a"), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("web-b", new() { ["app"] = "web", ["env"] = "dev" }, "node-b"), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "kube-system", TestObjects.Pod("db", new() { ["app"] = "db" }, "node-a"), api.Token);

        async Task<string[]> Names(string? ns, ListOptions options)
            => (await api.Client.ListAsync(KubeResources.V1Pods, ns, options, api.Token)).Items.Select(p => p.Metadata.Name!).Order().ToArray();

        (await Names(null, new() { LabelSelector = "app=web" })).ShouldBe(["web-a", "web-b"]);
        (await Names(null, new() { LabelSelector = "app=web,env!=prod" })).ShouldBe(["web-b"]);
        (await Names(null, new() { LabelSelector = "env in (prod, dev)" })).ShouldBe(["web-a", "web-b"]);
        (await Names(null, new() { LabelSelector = "!env" })).ShouldBe(["db"]);
        (await Names(null, new() { FieldSelector = "spec.nodeName=node-a" })).ShouldBe(["db", "web-a"]);
        (await Names(null, new() { FieldSelector = "spec.nodeName=node-a,metadata.namespace=default" })).ShouldBe(["web-a"]);
        (await Names(null, new() { FieldSelector = "metadata.name!=db,status.phase=Pending" })).ShouldBe(["web-a", "web-b"]);
        (await Names("kube-system", new())).ShouldBe(["db"]);

        var bad = await Should.ThrowAsync<PodMigrateException>(() => Names(null, new() { LabelSelector = "a in (b" }));
        bad.Kind.ShouldBe(ErrorKind.InvalidArgument);
    }

    [Fact]
    public async Task Patches_merge_strategic_and_json_and_the_status_subresource_is_separate()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var pod = TestObjects.Pod("p");
        pod.Spec.Containers.Add(new V1Container { Name = "sidecar", Image = "busybox" });
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", pod, api.Token);

        // Strategic merge: the containers list merges by name instead of being replaced.
        var strategic = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.StrategicMergePatch,
            """{"spec":{"containers":[{"name":"sidecar","image":"busybox:2"}]}}""", status: false, api.Token);
        strategic.Spec.Containers.Select(c => $"{c.Name}={c.Image}").ShouldBe(["main=localhost:5000/podmigrate/counter:1", "sidecar=busybox:2"]);

        // JSON merge patch: the list is replaced; null deletes a key.
        var merge = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.MergePatch,
            """{"metadata":{"labels":{"a":"1"}},"spec":{"containers":[{"name":"main","image":"x"}]}}""", status: false, api.Token);
        merge.Spec.Containers.Select(c => c.Name).ShouldBe(["main"]);
        var removed = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.MergePatch, """{"metadata":{"labels":{"a":null}}}""", status: false, api.Token);
        removed.Metadata.Labels.ShouldBeEmpty();

        var jsonPatch = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.JsonPatch,
            """[{"op":"add","path":"/metadata/annotations","value":{"k":"v"}},{"op":"test","path":"/spec/containers/0/name","value":"main"}]""", status: false, api.Token);
        jsonPatch.Metadata.Annotations!["k"].ShouldBe("v");

        // A status in a main-resource write is ignored; the status subresource writes only the status.
        var withStatus = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.MergePatch, """{"status":{"phase":"Running"}}""", status: false, api.Token);
        withStatus.Status!.Phase.ShouldBe("Pending");
        var running = await api.Client.PatchAsync(KubeResources.V1Pods, "default", "p", PatchType.MergePatch,
            """{"status":{"phase":"Running","podIP":"10.88.0.5"},"metadata":{"labels":{"ignored":"yes"}}}""", status: true, api.Token);
        running.Status!.Phase.ShouldBe("Running");
        running.Status.PodIP.ShouldBe("10.88.0.5");
        (running.Metadata.Labels ?? new Dictionary<string, string>()).ShouldNotContainKey("ignored");
        running.Status.Phase = "Succeeded";
        (await api.Client.ReplaceStatusAsync(KubeResources.V1Pods, "default", "p", running, api.Token)).Status!.Phase.ShouldBe("Succeeded");
    }

    [Fact]
    public async Task Watch_streams_typed_events_with_selectors_and_resumes_from_a_resource_version()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var first = await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("before"), api.Token);

        // From the version of "before": only what comes after it, on node-a.
        var events = new List<string>();
        var watch = Task.Run(async () =>
        {
            await foreach (var e in api.Client.WatchAsync(KubeResources.V1Pods, "default",
                new ListOptions { ResourceVersion = first.Metadata.ResourceVersion, FieldSelector = "spec.nodeName=node-a", TimeoutSeconds = 30 }, api.Token))
            {
                events.Add($"{e.Type} {e.Resource.Metadata.Name} {e.Resource.Status?.Phase}");
                if (e.Type == WatchEventType.Deleted)
                {
                    return;
                }
            }
        }, api.Token);

        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("elsewhere", nodeName: "node-b"), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("here", nodeName: "node-a"), api.Token);
        await api.Client.PatchAsync(KubeResources.V1Pods, "default", "here", PatchType.MergePatch, """{"status":{"phase":"Running"}}""", status: true, api.Token);
        await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "here", new DeleteOptions { GracePeriodSeconds = 0 }, api.Token);
        await watch.WaitAsync(api.Token);

        events.ShouldBe(["Added here Pending", "Modified here Running", "Deleted here Running"]);
    }

    [Fact]
    public async Task Watch_without_a_version_starts_with_what_exists_and_ends_at_timeoutSeconds()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("one"), api.Token);
        var names = new List<string>();
        await foreach (var e in api.Client.WatchAsync(KubeResources.V1Pods, null, new ListOptions { TimeoutSeconds = 1 }, api.Token))
        {
            names.Add($"{e.Type} {e.Resource.Metadata.Name}");
        }
        names.ShouldBe(["Added one"]);
    }

    [Fact]
    public async Task A_watch_from_a_compacted_version_is_gone_and_a_relist_recovers()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { WatchHistory = 3 });
        var first = await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("p0"), api.Token);
        for (var i = 1; i <= 5; i++)
        {
            await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod($"p{i}"), api.Token);
        }

        var gone = await Should.ThrowAsync<PodMigrateException>(async () =>
        {
            await foreach (var _ in api.Client.WatchAsync(KubeResources.V1Pods, "default", new ListOptions { ResourceVersion = first.Metadata.ResourceVersion }, api.Token))
            {
            }
        });
        gone.IsGone().ShouldBeTrue();
        gone.KubeStatus()!.Reason.ShouldBe("Expired");

        // What an informer does next: list, then watch from the list's version.
        var list = await api.Client.ListAsync(KubeResources.V1Pods, "default", null, api.Token);
        list.Items.Count.ShouldBe(6);
        await using var watch = api.Client.WatchAsync(KubeResources.V1Pods, "default", new ListOptions { ResourceVersion = list.Metadata.ResourceVersion }, api.Token).GetAsyncEnumerator(api.Token);
        var next = watch.MoveNextAsync().AsTask();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("p6"), api.Token);
        (await next.WaitAsync(api.Token)).ShouldBeTrue();
        watch.Current.Resource.Metadata.Name.ShouldBe("p6");
    }

    [Fact]
    public async Task Finalizers_hold_a_deleted_object_until_they_are_removed()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.Namespaces, null, new KubeNamespace { Metadata = new ObjectMeta { Name = "team" } }, api.Token);
        var pod = TestObjects.Pod("held");
        pod.Metadata.Finalizers = ["podmigrate.io/migration"];
        await api.Client.CreateAsync(KubeResources.V1Pods, "team", pod, api.Token);

        var pending = await api.Client.DeleteAsync(KubeResources.V1Pods, "team", "held", null, api.Token);
        pending.ShouldNotBeNull().Metadata.DeletionTimestamp.ShouldNotBeNull();
        (await api.Client.GetAsync(KubeResources.V1Pods, "team", "held", api.Token)).Metadata.DeletionTimestamp.ShouldNotBeNull();

        await api.Client.PatchAsync(KubeResources.V1Pods, "team", "held", PatchType.MergePatch, """{"metadata":{"finalizers":null}}""", status: false, api.Token);
        (await Should.ThrowAsync<PodMigrateException>(() => api.Client.GetAsync(KubeResources.V1Pods, "team", "held", api.Token))).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact]
    public async Task A_pod_bound_to_a_node_terminates_gracefully_until_its_kubelet_deletes_it_with_grace_zero()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("bound"), api.Token);
        await api.Client.CreateAsync(KubeResources.V1Nodes, null, new V1Node { Metadata = new V1ObjectMeta { Name = "node-a" } }, api.Token);
        await api.Client.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("bound2"), api.Token);

        var http = new HttpClient { BaseAddress = api.Server.BaseAddress };
        using var binding = new StringContent("""{"apiVersion":"v1","kind":"Binding","metadata":{"name":"bound"},"target":{"kind":"Node","name":"node-a"}}""",
            System.Text.Encoding.UTF8, "application/json");
        (await http.PostAsync("/api/v1/namespaces/default/pods/bound/binding", binding, api.Token)).StatusCode.ShouldBe(System.Net.HttpStatusCode.Created);
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "bound", api.Token)).Spec.NodeName.ShouldBe("node-a");

        var terminating = await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "bound", null, api.Token);
        terminating.ShouldNotBeNull().Metadata.DeletionGracePeriodSeconds.ShouldBe(30);
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "bound", api.Token)).Metadata.DeletionTimestamp.ShouldNotBeNull();
        (await api.Client.DeleteAsync(KubeResources.V1Pods, "default", "bound", new DeleteOptions { GracePeriodSeconds = 0 }, api.Token)).ShouldNotBeNull();
        (await Should.ThrowAsync<PodMigrateException>(() => api.Client.GetAsync(KubeResources.V1Pods, "default", "bound", api.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        http.Dispose();
    }

    [Fact]
    public async Task A_crd_serves_its_custom_resources_with_status_and_unknown_fields_survive()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var crd = await api.Client.CreateAsync(KubeResources.CustomResourceDefinitions, null, TestObjects.Crd(), api.Token);
        crd.Status!.Value.GetProperty("conditions").EnumerateArray().ShouldContain(c => c.GetProperty("type").GetString() == "Established");

        var migration = new CustomResource
        {
            ApiVersion = "podmigrate.io/v1alpha1",
            Kind = "PodMigration",
            Metadata = new ObjectMeta { GenerateName = "move-" },
            Spec = JsonDocument.Parse("""{"podName":"counter","mode":"Migrate","future":{"nested":[1,2]}}""").RootElement.Clone(),
            Status = JsonDocument.Parse("""{"phase":"Ignored"}""").RootElement.Clone(),
            ExtensionData = new() { ["topLevelExtra"] = JsonSerializer.SerializeToElement("kept") },
        };
        var created = await api.Client.CreateAsync(Migrations, "default", migration, api.Token);
        created.Metadata.Name.ShouldStartWith("move-");
        created.Metadata.Name!.Length.ShouldBe("move-".Length + 5);
        created.Status.ShouldBeNull();
        created.ExtensionData!["topLevelExtra"].GetString().ShouldBe("kept");

        var name = created.Metadata.Name;
        var withStatus = await api.Client.PatchAsync(Migrations, "default", name, PatchType.MergePatch, """{"status":{"phase":"Checkpointing"}}""", status: true, api.Token);
        withStatus.Status!.Value.GetProperty("phase").GetString().ShouldBe("Checkpointing");
        withStatus.Metadata.Generation.ShouldBe(1);

        var fetched = await api.Client.GetAsync(Migrations, "default", name, api.Token);
        fetched.Spec!.Value.GetProperty("future").GetProperty("nested").GetArrayLength().ShouldBe(2);
        var replaced = await api.Client.ReplaceAsync(Migrations, "default", name,
            new CustomResource { ApiVersion = fetched.ApiVersion, Kind = fetched.Kind, Metadata = fetched.Metadata, Spec = JsonDocument.Parse("""{"podName":"other"}""").RootElement.Clone(), ExtensionData = fetched.ExtensionData },
            api.Token);
        replaced.Metadata.Generation.ShouldBe(2);
        replaced.Status!.Value.GetProperty("phase").GetString().ShouldBe("Checkpointing");

        // Deleting the CRD takes its custom resources with it.
        await api.Client.DeleteAsync(KubeResources.CustomResourceDefinitions, null, "podmigrations.podmigrate.io", null, api.Token);
        (await Should.ThrowAsync<PodMigrateException>(() => api.Client.GetAsync(Migrations, "default", name, api.Token))).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact]
    public async Task A_required_token_is_enforced_and_tls_is_trusted_through_the_kubeconfig_ca()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { BearerToken = "s3cret", UseTls = true });
        api.Server.BaseAddress.Scheme.ShouldBe("https");
        (await api.Client.ListAsync(KubeResources.Namespaces, null, null, api.Token)).Items.Count.ShouldBeGreaterThan(0);

        var noToken = api.Server.ClientConfig;
        noToken.AccessToken = null;
        using var anonymous = new KubernetesApiClient(noToken);
        var denied = await Should.ThrowAsync<PodMigrateException>(() => anonymous.ListAsync(KubeResources.V1Pods, null, null, api.Token));
        denied.IsUnauthorized().ShouldBeTrue();

        var noCa = api.Server.ClientConfig;
        noCa.SslCaCerts = null;
        using var untrusting = new KubernetesApiClient(noCa);
        (await Should.ThrowAsync<PodMigrateException>(() => untrusting.ListAsync(KubeResources.V1Pods, null, null, api.Token))).Kind.ShouldBe(ErrorKind.Unavailable);
    }
}
