using System.Net;
using System.Net.Http.Headers;
using k8s.Models;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Tests.Rbac;

/// <summary>
/// The API server with authentication and RBAC on, over real HTTP: who gets in (tokens, client certificates; nobody
/// anonymous), what a 403 looks like, that a missing verb fails the call that needs it, and deploy/'s RBAC as the
/// controller's service account meets it.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ServerSecurityTests
{
    [Fact]
    public async Task Requests_without_a_known_credential_are_401()
    {
        await using var api = await RbacFixture.StartAsync();
        using var http = new HttpClient { BaseAddress = api.Server.BaseAddress };
        foreach (var (path, token) in new[] { ("/api/v1/namespaces/default/pods", (string?)null), ("/api", null), ("/healthz", null), ("/api/v1/namespaces/default/pods", "not-a-token") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
            using var response = await http.SendAsync(request, api.Token);
            response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, path);
            var body = await response.Content.ReadAsStringAsync(api.Token);
            body.ShouldContain("\"reason\":\"Unauthorized\"");
            body.ShouldContain("\"kind\":\"Status\"");
        }
    }

    [Fact]
    public async Task Tokens_authenticate_users_service_accounts_and_nodes_with_their_groups()
    {
        await using var api = await RbacFixture.StartAsync();
        (await RbacFixture.WhoAmIAsync(api.Client, api.Token)).ShouldBe(("admin", "system:masters,system:authenticated"));
        using var alice = api.ClientFor(RbacFixture.AliceToken);
        (await RbacFixture.WhoAmIAsync(alice, api.Token)).ShouldBe(("alice", "devs,system:authenticated"));
        using var controller = api.ClientFor(RbacFixture.ControllerToken);
        (await RbacFixture.WhoAmIAsync(controller, api.Token)).ShouldBe(("system:serviceaccount:podmigrate-system:podmigrate-controller",
            "system:serviceaccounts,system:serviceaccounts:podmigrate-system,system:authenticated"));
        using var node = api.ClientFor(RbacFixture.NodeToken);
        (await RbacFixture.WhoAmIAsync(node, api.Token)).ShouldBe(("system:node:node-a", "system:nodes,system:authenticated"));
    }

    [Fact]
    public async Task Client_certificates_signed_by_the_client_ca_authenticate_cn_as_user_and_o_as_groups()
    {
        using var ca = RbacFixture.CreateCa("client CA");
        using var stranger = RbacFixture.CreateCa("someone else's CA");
        await using var api = await RbacFixture.StartAsync(tls: true, clientCaPem: ca.ExportCertificatePem());
        var (certificate, key) = RbacFixture.IssueClientCertificate(ca, "bob", "team-a", "team-b");
        using var bob = new KubernetesApiClient(WithClientCertificate(api.Server.ClientConfigFor(null), certificate, key));
        (await RbacFixture.WhoAmIAsync(bob, api.Token)).ShouldBe(("bob", "team-a,team-b,system:authenticated"));
        // RBAC applies to them as to anyone: bob has no role yet.
        (await RbacFixture.RefusedAsync(() => bob.ListAsync(KubeResources.V1Pods, "default", null, api.Token))).Code.ShouldBe(HttpStatusCode.Forbidden);

        var (forged, forgedKey) = RbacFixture.IssueClientCertificate(stranger, "admin", "system:masters");
        using var mallory = new KubernetesApiClient(WithClientCertificate(api.Server.ClientConfigFor(null), forged, forgedKey));
        (await RbacFixture.RefusedAsync(() => mallory.ListAsync(KubeResources.V1Pods, "default", null, api.Token))).Code.ShouldBe(HttpStatusCode.Unauthorized);
        // A token still works on the same TLS server.
        (await api.Client.ListAsync(KubeResources.V1Pods, "default", null, api.Token)).Items.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_forbidden_request_is_a_403_Status_worded_like_kube_apiservers()
    {
        await using var api = await RbacFixture.StartAsync();
        using var alice = api.ClientFor(RbacFixture.AliceToken);
        var list = await RbacFixture.RefusedAsync(() => alice.ListAsync(KubeResources.V1Pods, "default", null, api.Token));
        list.Code.ShouldBe(HttpStatusCode.Forbidden);
        list.Status.Reason.ShouldBe("Forbidden");
        list.Status.Message.ShouldBe("pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        list.Status.Details!.Kind.ShouldBe("pods");
        var get = await RbacFixture.RefusedAsync(() => alice.GetAsync(KubeResources.V1Leases, "podmigrate-system", "podmigrate-controller", api.Token));
        get.Status.Message.ShouldBe("leases.coordination.k8s.io \"podmigrate-controller\" is forbidden: User \"alice\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"podmigrate-system\"");
        get.Status.Details!.Name.ShouldBe("podmigrate-controller");
        (await RbacFixture.RefusedAsync(() => alice.ListAsync(KubeResources.V1Nodes, null, null, api.Token))).Status.Message
            .ShouldBe("nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope");

        // Discovery, OpenAPI, /version and health are every authenticated user's (the default system:discovery role).
        using var http = new HttpClient { BaseAddress = api.Server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", RbacFixture.AliceToken);
        foreach (var path in new[] { "/api", "/api/v1", "/apis", "/apis/coordination.k8s.io/v1", "/openapi/v2", "/openapi/v3", "/version", "/healthz" })
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative), api.Token);
            response.StatusCode.ShouldBe(HttpStatusCode.OK, path);
        }
        using var metrics = await http.GetAsync(new Uri("/metrics", UriKind.Relative), api.Token);
        metrics.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        System.Text.Json.Nodes.JsonNode.Parse(await metrics.Content.ReadAsStringAsync(api.Token))!["message"]!.GetValue<string>()
            .ShouldBe("forbidden: User \"alice\" cannot get path \"/metrics\"");
    }

    [Fact]
    public async Task A_role_without_pods_binding_create_makes_the_binding_call_403_until_the_verb_is_granted()
    {
        await using var api = await RbacFixture.StartAsync();
        await api.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: scheduler-lite}
            rules:
            - {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, update, patch, delete]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: scheduler-lite}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scheduler-lite}
            subjects: [{kind: User, name: alice}]
            """);
        using var alice = api.ClientFor(RbacFixture.AliceToken);
        var pod = await alice.CreateAsync(KubeResources.V1Pods, "default", TestObjects.Pod("web"), api.Token);
        var refused = await RbacFixture.RefusedAsync(() => alice.BindAsync("default", "web", "node-a", api.Token));
        refused.Code.ShouldBe(HttpStatusCode.Forbidden);
        refused.Status.Message.ShouldBe("pods \"web\" is forbidden: User \"alice\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"default\"");
        (await RbacFixture.CanIAsync(alice, "create", "pods", "default", api.Token, subresource: "binding")).ShouldBeFalse();
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "web", api.Token)).Spec.NodeName.ShouldBeNull("nothing was bound");

        // The stored role is what decides, at each request: grant the subresource and the same call passes.
        var role = await api.Client.GetAsync(RbacFixture.KindOf("ClusterRole"), null, "scheduler-lite", api.Token);
        var rules = role.ExtensionData!["rules"].GetRawText().TrimEnd(']') + """,{"apiGroups":[""],"resources":["pods/binding"],"verbs":["create"]}]""";
        await api.Client.PatchAsync(RbacFixture.KindOf("ClusterRole"), null, "scheduler-lite", PatchType.MergePatch, $$"""{"rules":{{rules}}}""", status: false, api.Token);
        (await RbacFixture.CanIAsync(alice, "create", "pods", "default", api.Token, subresource: "binding")).ShouldBeTrue();
        await alice.BindAsync("default", pod.Metadata.Name!, "node-a", api.Token);
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "web", api.Token)).Spec.NodeName.ShouldBe("node-a");
    }

    [Fact]
    public async Task Deploy_rbac_is_what_the_controller_service_account_may_do()
    {
        await using var api = await RbacFixture.StartAsync();
        await api.ApplyAsync(File.ReadAllText(Path.Combine(DeployDirectory.Path, "20-rbac.yaml")), "deploy/20-rbac.yaml");
        using var controller = api.ClientFor(RbacFixture.ControllerToken);
        Task<bool> Can(string verb, string resource, string? ns, string group = "", string subresource = "", string name = "")
            => RbacFixture.CanIAsync(controller, verb, resource, ns, api.Token, group, subresource, name);

        // What the controller does everywhere, through the ClusterRoleBinding.
        (await controller.ListAsync(KubeResources.V1Pods, "team", null, api.Token)).Items.ShouldBeEmpty();
        (await controller.ListAsync(KubeResources.V1Nodes, null, null, api.Token)).Items.ShouldBeEmpty();
        (await Can("watch", "podmigrations", null, "podmigrate.io")).ShouldBeTrue();
        (await Can("update", "podmigrations", "team", "podmigrate.io", "status", "m")).ShouldBeTrue();
        (await Can("create", "pods", "team")).ShouldBeTrue();
        (await Can("create", "events", "team")).ShouldBeTrue();
        // Its Role in podmigrate-system: one Lease and one Secret, by name; nothing of the kind anywhere else.
        (await Can("update", "leases", "podmigrate-system", "coordination.k8s.io", name: "podmigrate-controller")).ShouldBeTrue();
        (await Can("update", "leases", "podmigrate-system", "coordination.k8s.io", name: "someone-else")).ShouldBeFalse();
        (await Can("update", "leases", "team", "coordination.k8s.io", name: "podmigrate-controller")).ShouldBeFalse();
        (await RbacFixture.RefusedAsync(() => controller.GetAsync(KubeResources.V1Secrets, "podmigrate-system", "podmigrate-controller-tls", api.Token))).Code
            .ShouldBe(HttpStatusCode.NotFound, "allowed, and not there yet");
        (await RbacFixture.RefusedAsync(() => controller.GetAsync(KubeResources.V1Secrets, "podmigrate-system", "other", api.Token))).Code.ShouldBe(HttpStatusCode.Forbidden);
        (await RbacFixture.RefusedAsync(() => controller.ListAsync(KubeResources.V1Secrets, "podmigrate-system", null, api.Token))).Code.ShouldBe(HttpStatusCode.Forbidden);
        // Least privilege: nothing it does not use.
        (await Can("delete", "nodes", null, name: "node-a")).ShouldBeFalse();
        (await Can("delete", "podmigrations", "team", "podmigrate.io", name: "m")).ShouldBeFalse();
        (await Can("create", "pods", "team", subresource: "exec", name: "web")).ShouldBeFalse();
        (await Can("get", "secrets", "team", name: "podmigrate-controller-tls")).ShouldBeFalse();
    }

    [Fact]
    public async Task System_masters_needs_no_binding_and_authorization_off_allows_every_authenticated_user()
    {
        await using var api = await RbacFixture.StartAsync();
        await api.Client.DeleteAsync(RbacFixture.KindOf("ClusterRoleBinding"), null, "cluster-admin", null, api.Token);
        (await api.Client.ListAsync(KubeResources.V1Secrets, "kube-system", null, api.Token)).Items.ShouldBeEmpty();
        (await RbacFixture.CanIAsync(api.Client, "*", "*", null, api.Token, group: "*")).ShouldBeTrue();

        await using var open = await ApiServerFixture.StartAsync(new ApiServerOptions { Tokens = RbacFixture.Tokens });
        using var alice = open.ClientFor(RbacFixture.AliceToken);
        (await alice.ListAsync(KubeResources.V1Nodes, null, null, open.Token)).Items.ShouldBeEmpty();
        (await RbacFixture.CanIAsync(alice, "delete", "nodes", null, open.Token)).ShouldBeTrue();
        // …and with no credentials configured at all (the unit fixtures), nothing is asked.
        await using var unsecured = await ApiServerFixture.StartAsync();
        (await RbacFixture.WhoAmIAsync(unsecured.Client, unsecured.Token)).Name.ShouldBe("system:unsecured");
    }

    private static k8s.KubernetesClientConfiguration WithClientCertificate(k8s.KubernetesClientConfiguration config, string certificatePem, string keyPem)
    {
        config.ClientCertificateData = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(certificatePem));
        config.ClientCertificateKeyData = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(keyPem));
        return config;
    }
}
