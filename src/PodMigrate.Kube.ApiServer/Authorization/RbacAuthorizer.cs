using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// kube-apiserver's RBAC authorizer over the Role, ClusterRole, RoleBinding and ClusterRoleBinding objects this server
/// stores, read at each request (a change is in force at once). A request is allowed when a rule of a role bound to the
/// user, one of its groups, or its service account allows it: ClusterRoleBindings everywhere, RoleBindings only in their
/// own namespace (whether they reference a Role there or a ClusterRole), never for cluster-scoped resources or
/// non-resource URLs. Rules match by verb, API group, resource (with "resource/subresource", "*" and "*/subresource"),
/// resourceNames and nonResourceURLs (a trailing "*" is a prefix), as rbac/v1's helpers do. Members of system:masters
/// are allowed everything, as by kube-apiserver's privileged-group authorizer. Aggregated ClusterRoles are not
/// aggregated: their rules are taken as stored.
/// </summary>
internal sealed class RbacAuthorizer(ObjectStore store)
{
    /// <summary>Allowed or not, and why (the binding that allowed it, as RBAC's reason says).</summary>
    public (bool Allowed, string Reason) Authorize(RequestAttributes request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.User.Groups.Contains(UserInfo.MastersGroup, StringComparer.Ordinal))
        {
            return (true, $"allowed: the user is in {UserInfo.MastersGroup}");
        }
        foreach (var binding in Items(BuiltInTypes.ClusterRoleBindings, null))
        {
            if (Allows(binding, bindingNamespace: "", request) is { } reason)
            {
                return (true, reason);
            }
        }
        if (request.Namespace.Length > 0)
        {
            foreach (var binding in Items(BuiltInTypes.RoleBindings, request.Namespace))
            {
                if (Allows(binding, request.Namespace, request) is { } reason)
                {
                    return (true, reason);
                }
            }
        }
        return (false, "");
    }

    private string? Allows(JsonObject binding, string bindingNamespace, RequestAttributes request)
    {
        var subject = (binding["subjects"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(s => AppliesTo(s, bindingNamespace, request.User));
        if (subject is null || binding["roleRef"] is not JsonObject roleRef)
        {
            return null;
        }
        var roleKind = Str(roleRef, "kind");
        var roleName = Str(roleRef, "name");
        var role = roleKind switch
        {
            "ClusterRole" => Find(BuiltInTypes.ClusterRoles, null, roleName),
            "Role" when bindingNamespace.Length > 0 => Find(BuiltInTypes.Roles, bindingNamespace, roleName),
            _ => null,
        };
        if (role?["rules"] is not JsonArray rules || !rules.OfType<JsonObject>().Any(rule => RuleAllows(request, rule)))
        {
            return null;
        }
        var bindingKind = bindingNamespace.Length > 0 ? $"RoleBinding \"{Str(binding["metadata"], "name")}/{bindingNamespace}\"" : $"ClusterRoleBinding \"{Str(binding["metadata"], "name")}\"";
        return $"RBAC: allowed by {bindingKind} of {roleKind} \"{roleName}\" to {Str(subject, "kind")} \"{Str(subject, "name")}\"";
    }

    /// <summary>rbac/v1 appliesTo: a User by name, a Group by membership, a ServiceAccount by its user name (namespace defaults to the binding's).</summary>
    internal static bool AppliesTo(JsonObject subject, string bindingNamespace, UserInfo user) => Str(subject, "kind") switch
    {
        "User" => Str(subject, "name") == user.Name,
        "Group" => user.Groups.Contains(Str(subject, "name"), StringComparer.Ordinal),
        "ServiceAccount" => user.Name == $"{UserInfo.ServiceAccountPrefix}{(Str(subject, "namespace") is { Length: > 0 } ns ? ns : bindingNamespace)}:{Str(subject, "name")}",
        _ => false,
    };

    /// <summary>rbac/v1 RuleAllows.</summary>
    internal static bool RuleAllows(RequestAttributes request, JsonObject rule)
    {
        if (!Matches(rule["verbs"], request.Verb))
        {
            return false;
        }
        if (!request.IsResourceRequest)
        {
            return Strings(rule["nonResourceURLs"]).Any(url => url == "*" || url == request.Path
                || (url.EndsWith('*') && request.Path.StartsWith(url.TrimEnd('*'), StringComparison.Ordinal)));
        }
        var combined = request.Subresource.Length > 0 ? $"{request.Resource}/{request.Subresource}" : request.Resource;
        var names = Strings(rule["resourceNames"]).ToList();
        return Matches(rule["apiGroups"], request.ApiGroup)
            && Strings(rule["resources"]).Any(r => r == "*" || r == combined
                || (request.Subresource.Length > 0 && r == $"*/{request.Subresource}"))
            && (names.Count == 0 || (request.Name.Length > 0 && names.Contains(request.Name, StringComparer.Ordinal)));
    }

    private static bool Matches(JsonNode? allowed, string requested) => Strings(allowed).Any(v => v == "*" || v == requested);

    private List<JsonObject> Items(ResourceType type, string? ns) => store.List(type, ns, Selector.Everything, Selector.Everything).Items;

    private JsonObject? Find(ResourceType type, string? ns, string name)
    {
        try
        {
            return name.Length == 0 ? null : store.Get(type, ns, name);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    private static IEnumerable<string> Strings(JsonNode? node)
        => node is JsonArray array ? array.Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>() : [];

    private static string Str(JsonNode? node, string field)
        => node is JsonObject obj && obj[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
}
