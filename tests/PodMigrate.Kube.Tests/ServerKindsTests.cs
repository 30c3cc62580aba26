using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// The in-process API server's deploy kinds, OpenAPI documents, field validation and namespace termination, over HTTP
/// (raw where the typed client has no say: query parameters, headers, OpenAPI).
/// </summary>
[Trait("Category", "Integration")]
public sealed class ServerKindsTests
{
    private static readonly ResourceKind<CustomResource> Deployments = KubeResources.Custom("apps", "v1", "deployments", "Deployment");
    private static readonly ResourceKind<CustomResource> PersistentVolumes = KubeResources.Custom("", "v1", "persistentvolumes", "PersistentVolume", namespaced: false);
    private static readonly ResourceKind<CustomResource> ConfigMaps = KubeResources.Custom("", "v1", "configmaps", "ConfigMap");
    private static readonly ResourceKind<CustomResource> Secrets = KubeResources.Custom("", "v1", "secrets", "Secret");

    [Fact]
    public async Task Discovery_serves_the_apps_rbac_and_storage_kinds_with_their_scopes()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);

        var apps = await GetJsonAsync(http, "/apis/apps/v1", api.Token);
        var rbac = await GetJsonAsync(http, "/apis/rbac.authorization.k8s.io/v1", api.Token);
        var core = await GetJsonAsync(http, "/api/v1", api.Token);

        Names(apps).ShouldBe(["daemonsets", "daemonsets/status", "deployments", "deployments/status"]);
        Names(rbac).ShouldBe(["clusterrolebindings", "clusterroles", "rolebindings", "roles"]);
        Resource(core, "persistentvolumes")["namespaced"]!.GetValue<bool>().ShouldBeFalse();
        Resource(core, "persistentvolumeclaims")["namespaced"]!.GetValue<bool>().ShouldBeTrue();
        Resource(rbac, "clusterroles")["namespaced"]!.GetValue<bool>().ShouldBeFalse();
        Resource(apps, "daemonsets")["shortNames"]!.AsArray().Select(n => n!.GetValue<string>()).ShouldBe(["ds"]);
        (await GetJsonAsync(http, "/apis", api.Token))["groups"]!.AsArray().Select(g => g!["name"]!.GetValue<string>())
            .ShouldBe(["admissionregistration.k8s.io", "apiextensions.k8s.io", "apps", "coordination.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io"]);
    }

    [Fact]
    public async Task Stored_kinds_get_only_the_defaults_a_real_server_writes_and_status_stays_apart_from_spec()
    {
        await using var api = await ApiServerFixture.StartAsync();

        var pv = await api.Client.CreateAsync(PersistentVolumes, null, Custom("v1", "PersistentVolume", "share", null, """{"persistentVolumeReclaimPolicy":"Retain"}"""), api.Token);
        var secret = await api.Client.CreateAsync(Secrets, "default", Custom("v1", "Secret", "tls", "default", null), api.Token);
        var deployment = Custom("apps/v1", "Deployment", "controller", "default", """{"replicas":2}""");
        deployment.Status = Element("""{"readyReplicas":2}""");
        var created = await api.Client.CreateAsync(Deployments, "default", deployment, api.Token);

        pv.Status!.Value.GetProperty("phase").GetString().ShouldBe("Pending", "no binder runs here");
        secret.ExtensionData!["type"].GetString().ShouldBe("Opaque");
        created.Status.ShouldBeNull("a create does not write status: only a Deployment controller would");
        await api.Client.PatchAsync(Deployments, "default", "controller", PatchType.MergePatch, """{"status":{"readyReplicas":1}}""", status: true, api.Token);
        var replaced = await api.Client.PatchAsync(Deployments, "default", "controller", PatchType.MergePatch, """{"spec":{"replicas":3},"status":{"readyReplicas":9}}""", status: false, api.Token);
        replaced.Status!.Value.GetProperty("readyReplicas").GetInt32().ShouldBe(1);
        replaced.Metadata.Generation.ShouldBe(2);

        // A Node, unlike a Deployment, may be created with its status (what a kubelet registering itself does).
        var node = await api.Client.CreateAsync(KubeResources.V1Nodes, null, new V1Node
        {
            Metadata = new V1ObjectMeta { Name = "node-a" },
            Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] },
        }, api.Token);
        node.Status!.Conditions.ShouldHaveSingleItem().Status.ShouldBe("True");
    }

    [Fact]
    public async Task The_openapi_documents_advertise_field_validation_only_where_the_server_performs_it()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreateDeployCrdAsync(api);

        var index = (await GetJsonAsync(http, "/openapi/v3", api.Token))["paths"]!.AsObject();
        index.Select(p => p.Key).ShouldBe(
        [
            "api/v1", "apis/admissionregistration.k8s.io/v1", "apis/apiextensions.k8s.io/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1", "apis/node.k8s.io/v1",
            "apis/podmigrate.io/v1alpha1", "apis/policy/v1", "apis/rbac.authorization.k8s.io/v1",
        ]);

        var custom = await GetJsonAsync(http, index["apis/podmigrate.io/v1alpha1"]!["serverRelativeURL"]!.GetValue<string>(), api.Token);
        var patch = custom["paths"]!["/apis/podmigrate.io/v1alpha1/namespaces/{namespace}/podmigrations/{name}"]!["patch"]!;
        patch["x-kubernetes-group-version-kind"]!["kind"]!.GetValue<string>().ShouldBe("PodMigration");
        ParameterNames(patch).ShouldContain("fieldValidation");
        var schema = custom["components"]!["schemas"]!["io.podmigrate.v1alpha1.PodMigration"]!;
        schema["properties"]!["spec"]!["required"]!.AsArray().Select(r => r!.GetValue<string>()).ShouldBe(["podName"]);

        var apps = await GetJsonAsync(http, index["apis/apps/v1"]!["serverRelativeURL"]!.GetValue<string>(), api.Token);
        var daemonSetPatch = apps["paths"]!["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"]!["patch"]!;
        daemonSetPatch["x-kubernetes-group-version-kind"]!["kind"]!.GetValue<string>().ShouldBe("DaemonSet");
        ParameterNames(daemonSetPatch).ShouldNotContain("fieldValidation", "no schema, no validation: kubectl must not rely on the server");
        apps["components"]!["schemas"]!.AsObject().Count.ShouldBe(0, "a schema without patch merge keys would change kubectl's strategic merge patches");

        // OpenAPI v2, as kubectl asks for it: protobuf, with no models at all.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v2");
        // Not a valid media type ('@'), but what kubectl sends.
        request.Headers.TryAddWithoutValidation("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
        using var response = await http.SendAsync(request, api.Token);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
        var bytes = await response.Content.ReadAsByteArrayAsync(api.Token);
        bytes[..5].ShouldBe(new byte[] { 0x0A, 3, (byte)'2', (byte)'.', (byte)'0' }, "field 1 (swagger) = \"2.0\"");
        bytes[^4..].ShouldBe(new byte[] { 0x42, 0, 0x4A, 0 }, "empty paths (8) and definitions (9)");
    }

    [Theory]
    [InlineData("Strict", HttpStatusCode.BadRequest, null)]
    [InlineData("Warn", HttpStatusCode.Created, "299 - \"unknown field \\\"spec.targetNod\\\"\"")]
    [InlineData("", HttpStatusCode.Created, "299 - \"unknown field \\\"spec.targetNod\\\"\"")]
    [InlineData("Ignore", HttpStatusCode.Created, null)]
    public async Task A_custom_resource_is_checked_against_its_schema_as_fieldValidation_asks(string mode, HttpStatusCode expected, string? warning)
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreateDeployCrdAsync(api);
        var query = mode.Length == 0 ? "" : $"?fieldValidation={mode}";

        using var response = await http.PostAsync($"/apis/podmigrate.io/v1alpha1/namespaces/default/podmigrations{query}",
            Json("""{"apiVersion":"podmigrate.io/v1alpha1","kind":"PodMigration","metadata":{"name":"m"},"spec":{"podName":"counter","targetNod":"node-b"}}"""), api.Token);

        response.StatusCode.ShouldBe(expected);
        (response.Headers.TryGetValues("Warning", out var warnings) ? warnings.Single() : null).ShouldBe(warning);
        if (expected == HttpStatusCode.BadRequest)
        {
            var status = JsonNode.Parse(await response.Content.ReadAsStringAsync(api.Token))!;
            status["reason"]!.GetValue<string>().ShouldBe("BadRequest");
            status["message"]!.GetValue<string>().ShouldBe("PodMigration in version \"v1alpha1\" cannot be handled as a PodMigration: strict decoding error: unknown field \"spec.targetNod\"");
        }
    }

    [Fact]
    public async Task A_strict_patch_that_adds_an_unknown_field_changes_nothing()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreateDeployCrdAsync(api);
        const string path = "/apis/podmigrate.io/v1alpha1/namespaces/default/podmigrations/m";
        (await http.PostAsync("/apis/podmigrate.io/v1alpha1/namespaces/default/podmigrations?fieldValidation=Strict",
            Json("""{"apiVersion":"podmigrate.io/v1alpha1","kind":"PodMigration","metadata":{"name":"m","labels":{"a":"b"}},"spec":{"podName":"counter"}}"""), api.Token))
            .StatusCode.ShouldBe(HttpStatusCode.Created);

        using var patch = new HttpRequestMessage(HttpMethod.Patch, $"{path}?fieldValidation=Strict")
        {
            Content = new StringContent("""{"spec":{"mode":"Clone","podname":"x"},"metadata":{"lables":{"c":"d"}}}""", Encoding.UTF8, "application/merge-patch+json"),
        };
        using var response = await http.SendAsync(patch, api.Token);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var message = JsonNode.Parse(await response.Content.ReadAsStringAsync(api.Token))!["message"]!.GetValue<string>();
        message.ShouldContain("unknown field \"spec.podname\"");
        message.ShouldContain("unknown field \"metadata.lables\"");
        var stored = await GetJsonAsync(http, path, api.Token);
        stored["spec"]!["mode"].ShouldBeNull();
    }

    [Fact]
    public async Task A_deleted_namespace_terminates_refuses_new_content_and_goes_with_its_content()
    {
        // The namespace controller's delay runs on a clock the test moves: on 2 busy cores a wall-clock delay ran out
        // between the delete and the create that must be refused (a fresh-clone run got 404 instead).
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { NamespaceCleanupDelay = TimeSpan.FromSeconds(5), TimeProvider = time });
        await api.Client.CreateAsync(KubeResources.Namespaces, null, new KubeNamespace { Metadata = new ObjectMeta { Name = "team" } }, api.Token);
        await api.Client.CreateAsync(ConfigMaps, "team", Custom("v1", "ConfigMap", "settings", "team", null), api.Token);
        var created = await api.Client.GetAsync(KubeResources.Namespaces, null, "team", api.Token);
        var gone = WaitForDeletionAsync(api, created.Metadata.ResourceVersion!);

        var terminating = await api.Client.DeleteAsync(KubeResources.Namespaces, null, "team", null, api.Token);

        terminating.ShouldNotBeNull().Metadata.DeletionTimestamp.ShouldNotBeNull();
        terminating.Status!.Value.GetProperty("phase").GetString().ShouldBe("Terminating");
        var refused = await Should.ThrowAsync<PodMigrateException>(() => api.Client.CreateAsync(ConfigMaps, "team", Custom("v1", "ConfigMap", "late", "team", null), api.Token));
        refused.Message.ShouldContain("unable to create new content in namespace team because it is being terminated");
        // What is there can still be deleted (kubectl delete -f of a directory deletes the namespace first).
        await api.Client.DeleteAsync(ConfigMaps, "team", "settings", null, api.Token);
        (await api.Client.ListAsync(ConfigMaps, "team", null, api.Token)).Items.ShouldBeEmpty();
        await api.Client.CreateAsync(Secrets, "default", Custom("v1", "Secret", "elsewhere", "default", null), api.Token);

        time.Advance(TimeSpan.FromSeconds(5));
        await gone;
        var missing = await Should.ThrowAsync<PodMigrateException>(() => api.Client.GetAsync(KubeResources.Namespaces, null, "team", api.Token));
        missing.Kind.ShouldBe(ErrorKind.NotFound);
        (await api.Client.ListAsync(Secrets, "default", null, api.Token)).Items.ShouldHaveSingleItem();
    }

    [Fact]
    public async Task The_rbac_and_volume_kinds_print_what_kubectl_shows()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await PostAsync(http, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            """{"metadata":{"name":"b"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"default"},{"kind":"User","name":"alice"}]}""", api.Token);
        await PostAsync(http, "/api/v1/namespaces/default/persistentvolumeclaims",
            """{"metadata":{"name":"share"},"spec":{"accessModes":["ReadWriteMany"],"volumeName":"share","storageClassName":""}}""", api.Token);

        var binding = await TableRowAsync(http, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", api.Token);
        var claim = await TableRowAsync(http, "/api/v1/namespaces/default/persistentvolumeclaims", api.Token);

        // The age column is whole seconds since creation: 0s or 1s, depending on when the second turned.
        binding[2]!.ShouldMatch("^[01]s$");
        claim[7]!.ShouldMatch("^[01]s$");
        binding.Where((_, i) => i != 2).ShouldBe(["b", "Role/r", "alice", "", "default/sa"]);
        claim.Where((_, i) => i != 7).ShouldBe(["share", "Pending", "share", "", "", "", "<unset>", "Filesystem"]);
    }

    private static HttpClient Http(ApiServerFixture api) => new() { BaseAddress = api.Server.BaseAddress };

    private static System.Text.Json.JsonElement Element(string json)
    {
        using var document = System.Text.Json.JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonNode> GetJsonAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(path, cancellationToken);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, path);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!;
    }

    private static async Task PostAsync(HttpClient http, string path, string json, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsync(path, Json(json), cancellationToken);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(cancellationToken));
    }

    private static async Task<string?[]> TableRowAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("application/json;as=Table;v=v1;g=meta.k8s.io"));
        using var response = await http.SendAsync(request, cancellationToken);
        var table = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!;
        return [.. table["rows"]!.AsArray().Single()!["cells"]!.AsArray().Select(c => c?.ToString())];
    }

    private static string[] Names(JsonNode resourceList)
        => [.. resourceList["resources"]!.AsArray().Select(r => r!["name"]!.GetValue<string>())];

    private static JsonNode Resource(JsonNode resourceList, string name)
        => resourceList["resources"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == name)!;

    private static string[] ParameterNames(JsonNode operation)
        => [.. operation["parameters"]!.AsArray().Select(p => p!["name"]!.GetValue<string>())];

    private static CustomResource Custom(string apiVersion, string kind, string name, string? ns, string? spec) => new()
    {
        ApiVersion = apiVersion,
        Kind = kind,
        Metadata = new ObjectMeta { Name = name, Namespace = ns },
        Spec = spec is null ? null : Element(spec),
    };

    /// <summary>The project's CRD, from deploy/.</summary>
    private static async Task CreateDeployCrdAsync(ApiServerFixture api)
    {
        var yaml = await File.ReadAllTextAsync(Path.Combine(DeployDirectory.Path, "10-podmigration-crd.yaml"), api.Token);
        var crd = KubeJson.Deserialize(KubeYaml.ToJsonDocuments(yaml, "crd").Single(), KubeClientJsonContext.Default.CustomResource, "crd");
        await api.Client.CreateAsync(KubeResources.CustomResourceDefinitions, null, crd, api.Token);
    }

    /// <summary>Completes when namespace "team" is deleted: a watch from before the deletion, so no event is missed.</summary>
    private static Task WaitForDeletionAsync(ApiServerFixture api, string resourceVersion) => Task.Run(async () =>
    {
        await foreach (var e in api.Client.WatchAsync(KubeResources.Namespaces, null,
            new ListOptions { ResourceVersion = resourceVersion, FieldSelector = "metadata.name=team", TimeoutSeconds = 30 }, api.Token))
        {
            if (e.Type == WatchEventType.Deleted)
            {
                return;
            }
        }
        throw new TimeoutException("the namespace was not deleted before the watch ended");
    }, api.Token);
}
