using System.Text.Json.Nodes;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Authentication;
using PodMigrate.Kube.ApiServer.Authorization;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests.Rbac;

/// <summary>
/// The RBAC authorizer's decisions, as a table over one policy: verbs, API groups, subresources (and "*/status"),
/// resourceNames, namespaced bindings of Roles and ClusterRoles, cluster scope, users, groups, service accounts,
/// non-resource URLs, system:masters. Also how HTTP requests become attributes, and the token file format.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RbacAuthorizerTests : IDisposable
{
    private const string Policy = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: pod-reader}
        rules:
        - {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: binder}
        rules:
        - {apiGroups: [""], resources: [pods/binding], verbs: [create]}
        - {apiGroups: [""], resources: [pods/status], verbs: [patch, update]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: one-lease}
        rules:
        - {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [podmigrate-controller], verbs: [get, update]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: node-reader}
        rules:
        - {apiGroups: [""], resources: [nodes], verbs: [get, list]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: any-status}
        rules:
        - {apiGroups: ["*"], resources: ["*/status"], verbs: [get]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: podmigrate-all}
        rules:
        - {apiGroups: [podmigrate.io], resources: ["*"], verbs: ["*"]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: urls}
        rules:
        - {nonResourceURLs: [/metrics, /logs/*], verbs: [get]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: editor, namespace: team}
        rules:
        - {apiGroups: [""], resources: [pods], verbs: ["*"]}
        - {apiGroups: [""], resources: [configmaps], verbs: [create]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: alice-reads-pods}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
        subjects: [{kind: User, name: alice}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: devs-edit, namespace: team}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: editor}
        subjects: [{kind: Group, name: devs}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: alice-binds, namespace: team}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: binder}
        subjects: [{kind: User, name: alice}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: alice-nodes-in-team, namespace: team}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-reader}
        subjects: [{kind: User, name: alice}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: ctl-lease, namespace: podmigrate-system}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: one-lease}
        subjects: [{kind: ServiceAccount, name: ctl}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: nodes-read-nodes}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-reader}
        subjects: [{kind: Group, name: "system:nodes"}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: dave-status}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: any-status}
        subjects: [{kind: User, name: dave}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: bob-podmigrate}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: podmigrate-all}
        subjects: [{kind: ServiceAccount, name: bob, namespace: ops}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: alice-urls}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: urls}
        subjects: [{kind: User, name: alice}]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: dangling}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: does-not-exist}
        subjects: [{kind: User, name: carol}]
        """;

    private readonly ObjectStore _store = new(new ApiServerOptions { InitialNamespaces = ["default", "team", "podmigrate-system", "ops"] });
    private readonly RbacAuthorizer _authorizer;

    public RbacAuthorizerTests()
    {
        foreach (var json in KubeYaml.ToJsonDocuments(Policy, "policy"))
        {
            var obj = (JsonObject)JsonNode.Parse(json)!;
            var type = BuiltInTypes.All.Single(t => t.Kind == obj["kind"]!.GetValue<string>());
            _store.Create(type, obj["metadata"]!["namespace"]?.GetValue<string>(), obj);
        }
        _authorizer = new RbacAuthorizer(_store);
    }

    public void Dispose() => _store.Dispose();

    private static UserInfo User(string who) => who switch
    {
        "alice" => new UserInfo("alice", "", ["devs", UserInfo.AuthenticatedGroup]),
        "ctl" => UserInfo.ServiceAccount("podmigrate-system", "ctl").Authenticated(),
        "ctl-elsewhere" => UserInfo.ServiceAccount("default", "ctl").Authenticated(),
        "bob" => UserInfo.ServiceAccount("ops", "bob").Authenticated(),
        "node" => UserInfo.Node("node-a").Authenticated(),
        "admin" => UserInfo.Admin().Authenticated(),
        _ => new UserInfo(who, "", [UserInfo.AuthenticatedGroup]),
    };

    [Theory]
    // verbs, cluster-wide bindings, a list across namespaces
    [InlineData("alice", "list", "", "pods", "", "default", "", true)]
    [InlineData("alice", "watch", "", "pods", "", "", "", true)]
    [InlineData("alice", "get", "", "pods", "", "team", "web", true)]
    [InlineData("alice", "delete", "", "pods", "", "default", "web", false)]
    [InlineData("alice", "deletecollection", "", "pods", "", "default", "", false)]
    // a Role through a group, only in its namespace; "*" verbs; a verb not granted on another resource of the same Role
    [InlineData("alice", "delete", "", "pods", "", "team", "web", true)]
    [InlineData("alice", "deletecollection", "", "pods", "", "team", "", true)]
    [InlineData("alice", "create", "", "pods", "", "default", "", false)]
    [InlineData("alice", "create", "", "configmaps", "", "team", "", true)]
    [InlineData("alice", "update", "", "configmaps", "", "team", "cm", false)]
    // subresources: pods does not cover pods/binding or pods/status; a ClusterRole through a RoleBinding counts only in that namespace
    [InlineData("alice", "create", "", "pods", "binding", "team", "web", true)]
    [InlineData("alice", "create", "", "pods", "binding", "default", "web", false)]
    [InlineData("alice", "patch", "", "pods", "status", "team", "web", true)]
    [InlineData("alice", "get", "", "pods", "status", "default", "web", false)]
    [InlineData("dave", "get", "", "pods", "status", "default", "web", true)]
    [InlineData("dave", "get", "podmigrate.io", "podmigrations", "status", "default", "m", true)]
    [InlineData("dave", "get", "", "pods", "", "default", "web", false)]
    [InlineData("dave", "update", "", "pods", "status", "default", "web", false)]
    // resourceNames: only that name; never a list or a create (no name)
    [InlineData("ctl", "get", "coordination.k8s.io", "leases", "", "podmigrate-system", "podmigrate-controller", true)]
    [InlineData("ctl", "update", "coordination.k8s.io", "leases", "", "podmigrate-system", "podmigrate-controller", true)]
    [InlineData("ctl", "get", "coordination.k8s.io", "leases", "", "podmigrate-system", "other", false)]
    [InlineData("ctl", "list", "coordination.k8s.io", "leases", "", "podmigrate-system", "", false)]
    [InlineData("ctl", "create", "coordination.k8s.io", "leases", "", "podmigrate-system", "", false)]
    [InlineData("ctl", "get", "coordination.k8s.io", "leases", "", "default", "podmigrate-control", false)]
    // API groups: the same resource name in another group is another resource
    [InlineData("ctl", "get", "", "leases", "", "podmigrate-system", "podmigrate-controller", false)]
    // a ServiceAccount subject without a namespace is the binding's namespace's
    [InlineData("ctl-elsewhere", "get", "coordination.k8s.io", "leases", "", "podmigrate-system", "podmigrate-controller", false)]
    // "*" resources in a group: every resource and subresource of it, nothing outside it
    [InlineData("bob", "create", "podmigrate.io", "podmigrations", "", "default", "", true)]
    [InlineData("bob", "update", "podmigrate.io", "podmigrations", "status", "default", "m", true)]
    [InlineData("bob", "get", "", "pods", "", "default", "web", false)]
    // cluster scope: only ClusterRoleBindings grant it (a RoleBinding of node-reader in team does not give alice nodes)
    [InlineData("node", "get", "", "nodes", "", "", "node-a", true)]
    [InlineData("node", "delete", "", "nodes", "", "", "node-a", false)]
    [InlineData("alice", "get", "", "nodes", "", "", "node-a", false)]
    [InlineData("alice", "list", "", "nodes", "", "", "", false)]
    // a binding to a missing role grants nothing; nobody unbound gets anything
    [InlineData("carol", "get", "", "pods", "", "default", "web", false)]
    [InlineData("mallory", "list", "", "pods", "", "default", "", false)]
    // system:masters: everything, with no binding needed
    [InlineData("admin", "deletecollection", "", "nodes", "", "", "", true)]
    [InlineData("admin", "create", "", "pods", "binding", "default", "web", true)]
    public void Resource_requests(string who, string verb, string group, string resource, string subresource, string ns, string name, bool allowed)
    {
        var request = new RequestAttributes(User(who), verb, true, "", group, "v1", resource, subresource, ns, name);
        _authorizer.Authorize(request).Allowed.ShouldBe(allowed, request.ForbiddenReason());
    }

    [Theory]
    [InlineData("alice", "get", "/metrics", true)]
    [InlineData("alice", "get", "/logs/kubelet.log", true)]
    [InlineData("alice", "get", "/logs", false)]
    [InlineData("alice", "get", "/logsx", false)]
    [InlineData("alice", "post", "/metrics", false)]
    [InlineData("bob", "get", "/metrics", false)]
    [InlineData("admin", "get", "/debug/pprof", true)]
    public void Non_resource_requests(string who, string verb, string path, bool allowed)
        => _authorizer.Authorize(new RequestAttributes(User(who), verb, false, path)).Allowed.ShouldBe(allowed);

    [Fact]
    public void Default_roles_grant_discovery_and_self_reviews_to_every_authenticated_user_and_nothing_more()
    {
        BootstrapPolicy.Install(_store);
        var mallory = User("mallory");
        foreach (var path in new[] { "/api", "/api/v1", "/apis", "/apis/podmigrate.io/v1", "/openapi/v2", "/openapi/v3/apis/podmigrate.io/v1", "/version", "/healthz", "/readyz", "/livez" })
        {
            _authorizer.Authorize(new RequestAttributes(mallory, "get", false, path)).Allowed.ShouldBeTrue(path);
        }
        _authorizer.Authorize(new RequestAttributes(mallory, "get", false, "/metrics")).Allowed.ShouldBeFalse();
        _authorizer.Authorize(new RequestAttributes(mallory, "create", true, "", "authorization.k8s.io", "v1", "selfsubjectaccessreviews")).Allowed.ShouldBeTrue();
        _authorizer.Authorize(new RequestAttributes(mallory, "create", true, "", "authentication.k8s.io", "v1", "selfsubjectreviews")).Allowed.ShouldBeTrue();
        _authorizer.Authorize(new RequestAttributes(mallory, "create", true, "", "authorization.k8s.io", "v1", "subjectaccessreviews")).Allowed.ShouldBeFalse();
        // cluster-admin is bound to system:masters as an ordinary binding too.
        _authorizer.Authorize(new RequestAttributes(new UserInfo("root", "", [UserInfo.MastersGroup]), "get", true, "", "", "v1", "secrets", "", "default", "s")).Allowed.ShouldBeTrue();
    }

    [Theory]
    [InlineData("GET", "/api/v1/namespaces/default/pods", "", "list", "", "pods", "", "default", "")]
    [InlineData("GET", "/api/v1/namespaces/default/pods", "watch=true", "watch", "", "pods", "", "default", "")]
    [InlineData("GET", "/api/v1/pods", "watch=1&fieldSelector=spec.nodeName%3Dnode-a", "watch", "", "pods", "", "", "")]
    [InlineData("GET", "/apis/coordination.k8s.io/v1/namespaces/podmigrate-system/leases", "fieldSelector=metadata.name%3Dpodmigrate-controller", "list", "coordination.k8s.io", "leases", "", "podmigrate-system", "podmigrate-controller")]
    [InlineData("GET", "/api/v1/namespaces/default/pods/web", "", "get", "", "pods", "", "default", "web")]
    [InlineData("POST", "/api/v1/namespaces/default/pods", "", "create", "", "pods", "", "default", "")]
    [InlineData("POST", "/api/v1/namespaces/default/pods/web/binding", "", "create", "", "pods", "binding", "default", "web")]
    [InlineData("POST", "/api/v1/namespaces/default/pods/web/eviction", "", "create", "", "pods", "eviction", "default", "web")]
    [InlineData("PUT", "/apis/podmigrate.io/v1/namespaces/default/podmigrations/m/status", "", "update", "podmigrate.io", "podmigrations", "status", "default", "m")]
    [InlineData("PATCH", "/api/v1/nodes/node-a/status", "", "patch", "", "nodes", "status", "", "node-a")]
    [InlineData("DELETE", "/api/v1/namespaces/default/pods/web", "", "delete", "", "pods", "", "default", "web")]
    [InlineData("DELETE", "/api/v1/namespaces/default/pods", "", "deletecollection", "", "pods", "", "default", "")]
    [InlineData("GET", "/api/v1/namespaces/team", "", "get", "", "namespaces", "", "team", "team")]
    [InlineData("PUT", "/api/v1/namespaces/team/finalize", "", "update", "", "namespaces", "finalize", "team", "team")]
    [InlineData("GET", "/api/v1/namespaces", "", "list", "", "namespaces", "", "", "")]
    public void Http_requests_become_resource_attributes(string method, string path, string query, string verb, string group, string resource, string subresource, string ns, string name)
    {
        var parsed = System.Web.HttpUtility.ParseQueryString(query);
        var attributes = RequestAttributes.FromHttp(User("alice"), method, path, q => parsed[q]);
        attributes.IsResourceRequest.ShouldBeTrue();
        (attributes.Verb, attributes.ApiGroup, attributes.Resource, attributes.Subresource, attributes.Namespace, attributes.Name)
            .ShouldBe((verb, group, resource, subresource, ns, name));
    }

    [Theory]
    [InlineData("GET", "/api", "get")]
    [InlineData("GET", "/api/v1", "get")]
    [InlineData("GET", "/apis/podmigrate.io/v1", "get")]
    [InlineData("GET", "/openapi/v3/apis/podmigrate.io/v1", "get")]
    [InlineData("GET", "/version", "get")]
    [InlineData("POST", "/healthz", "post")]
    public void Http_requests_outside_the_api_are_non_resource_requests(string method, string path, string verb)
    {
        var attributes = RequestAttributes.FromHttp(User("alice"), method, path, _ => null);
        attributes.IsResourceRequest.ShouldBeFalse();
        (attributes.Verb, attributes.Path).ShouldBe((verb, path));
    }

    [Fact]
    public void Forbidden_messages_are_kube_apiservers()
    {
        var alice = User("alice");
        new RequestAttributes(alice, "list", true, "", "", "v1", "pods", "", "default").ForbiddenMessage()
            .ShouldBe("pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        new RequestAttributes(alice, "create", true, "", "", "v1", "pods", "binding", "default", "web").ForbiddenMessage()
            .ShouldBe("pods \"web\" is forbidden: User \"alice\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"default\"");
        new RequestAttributes(alice, "get", true, "", "coordination.k8s.io", "v1", "leases", "", "podmigrate-system", "x").ForbiddenMessage()
            .ShouldBe("leases.coordination.k8s.io \"x\" is forbidden: User \"alice\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"podmigrate-system\"");
        new RequestAttributes(alice, "list", true, "", "", "v1", "nodes").ForbiddenMessage()
            .ShouldBe("nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope");
        new RequestAttributes(alice, "get", false, "/metrics").ForbiddenMessage()
            .ShouldBe("forbidden: User \"alice\" cannot get path \"/metrics\"");
    }

    [Fact]
    public void A_token_file_reads_as_kube_apiservers()
    {
        var tokens = StaticToken.ParseFile("""
            # admin
            t1,admin,admin-uid,system:masters
            t2,system:serviceaccount:podmigrate-system:podmigrate-controller,c-uid,"system:serviceaccounts,system:serviceaccounts:podmigrate-system"

            t3,nobody,
            """, "tokens.csv");
        tokens.Count.ShouldBe(3);
        tokens[0].User.ShouldBe(new UserInfo("admin", "admin-uid", ["system:masters"]), new UserInfoComparer());
        tokens[1].User.Groups.ShouldBe(["system:serviceaccounts", "system:serviceaccounts:podmigrate-system"]);
        tokens[2].User.Groups.ShouldBeEmpty();
        StaticToken.ParseFile(string.Join('\n', tokens.Select(t => t.ToFileLine())), "again")
            .Select(t => (t.Token, t.User.Name, t.User.Uid, string.Join('|', t.User.Groups)))
            .ShouldBe(tokens.Select(t => (t.Token, t.User.Name, t.User.Uid, string.Join('|', t.User.Groups))));
        tokens[0].ToString().ShouldNotContain("t1");
        Should.Throw<Core.Errors.PodMigrateException>(() => StaticToken.ParseFile("t1,a,1\nt1,b,2", "dup")).Message.ShouldContain("dup:2: duplicate token");
        Should.Throw<Core.Errors.PodMigrateException>(() => StaticToken.ParseFile("t1,a", "short"));
    }

    private sealed class UserInfoComparer : IEqualityComparer<UserInfo>
    {
        public bool Equals(UserInfo? x, UserInfo? y) => x!.Name == y!.Name && x.Uid == y.Uid && x.Groups.SequenceEqual(y.Groups);

        public int GetHashCode(UserInfo obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
