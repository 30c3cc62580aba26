using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// The default roles kube-apiserver reconciles at start (its bootstrap policy), those this server's clients need:
/// cluster-admin bound to system:masters; system:discovery (the discovery and OpenAPI paths, /version, the health
/// endpoints) and system:basic-user (SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview) bound to every
/// authenticated user; system:public-info-viewer (/version and health). Stored as ordinary objects, so `kubectl get
/// clusterroles` lists them and the RBAC authorizer reads them like any other.
/// </summary>
internal static class BootstrapPolicy
{
    private const string DiscoveryRole = "system:discovery";

    public static void Install(ObjectStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var roles = new (string Name, JsonArray Rules, string[] Groups)[]
        {
            ("cluster-admin", [Rule(["*"], apiGroups: ["*"], resources: ["*"]), Rule(["*"], nonResourceUrls: ["*"])], [UserInfo.MastersGroup]),
            (DiscoveryRole,
                [Rule(["get"], nonResourceUrls: ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"])],
                [UserInfo.AuthenticatedGroup]),
            ("system:basic-user",
                [
                    Rule(["create"], apiGroups: [AccessReviews.AuthorizationGroup], resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                    Rule(["create"], apiGroups: [AccessReviews.AuthenticationGroup], resources: ["selfsubjectreviews"]),
                ],
                [UserInfo.AuthenticatedGroup]),
            ("system:public-info-viewer",
                [Rule(["get"], nonResourceUrls: ["/healthz", "/livez", "/readyz", "/version", "/version/"])],
                [UserInfo.AuthenticatedGroup, "system:unauthenticated"]),
        };
        foreach (var (name, rules, groups) in roles)
        {
            CreateIfMissing(store, BuiltInTypes.ClusterRoles, new JsonObject
            {
                ["metadata"] = Metadata(name),
                ["rules"] = rules,
            });
            CreateIfMissing(store, BuiltInTypes.ClusterRoleBindings, new JsonObject
            {
                ["metadata"] = Metadata(name),
                ["roleRef"] = new JsonObject { ["apiGroup"] = BuiltInTypes.RbacGroup, ["kind"] = "ClusterRole", ["name"] = name },
                ["subjects"] = new JsonArray(groups.Select(g => (JsonNode?)new JsonObject
                {
                    ["apiGroup"] = BuiltInTypes.RbacGroup,
                    ["kind"] = "Group",
                    ["name"] = g,
                }).ToArray()),
            });
        }
    }

    private static void CreateIfMissing(ObjectStore store, ResourceType type, JsonObject body)
    {
        try
        {
            store.Create(type, null, body);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // Reconciled already; a changed default is left as the admin changed it (autoupdate is not modelled).
        }
    }

    private static JsonObject Metadata(string name) => new()
    {
        ["name"] = name,
        ["labels"] = new JsonObject { ["kubernetes.io/bootstrapping"] = "rbac-defaults" },
        ["annotations"] = new JsonObject { ["rbac.authorization.kubernetes.io/autoupdate"] = "true" },
    };

    private static JsonObject Rule(string[] verbs, string[]? apiGroups = null, string[]? resources = null, string[]? nonResourceUrls = null)
    {
        static JsonArray Array(string[] values) => new(values.Select(v => (JsonNode?)v).ToArray());
        var rule = new JsonObject { ["verbs"] = Array(verbs) };
        if (apiGroups is not null)
        {
            rule["apiGroups"] = Array(apiGroups);
        }
        if (resources is not null)
        {
            rule["resources"] = Array(resources);
        }
        if (nonResourceUrls is not null)
        {
            rule["nonResourceURLs"] = Array(nonResourceUrls);
        }
        return rule;
    }
}
