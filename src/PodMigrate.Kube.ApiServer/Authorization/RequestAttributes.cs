using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// What a request asks to do, as kube-apiserver's authorizers see it (authorizer.Attributes): a resource request
/// (verb, API group, version, resource, subresource, namespace, name) or a non-resource request (verb, path).
/// </summary>
public sealed record RequestAttributes(
    UserInfo User,
    string Verb,
    bool IsResourceRequest,
    string Path,
    string ApiGroup = "",
    string ApiVersion = "",
    string Resource = "",
    string Subresource = "",
    string Namespace = "",
    string Name = "")
{
    /// <summary>
    /// kube-apiserver's RequestInfoFactory: /api/v1/... and /apis/&lt;group&gt;/&lt;version&gt;/... are resource requests
    /// (namespaces/&lt;ns&gt;/&lt;resource&gt;/&lt;name&gt;/&lt;subresource&gt;); everything else (discovery, /openapi, /version,
    /// /healthz) is a non-resource request whose verb is the HTTP method in lower case. A GET without a name is list,
    /// or watch with watch=true; a DELETE without a name is deletecollection; a list or watch whose field selector is
    /// exactly metadata.name=X is for the name X.
    /// </summary>
    public static RequestAttributes FromHttp(UserInfo user, string method, string path, Func<string, string?> query)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(query);
        var parts = (path ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        var nonResource = new RequestAttributes(user, method.ToLowerInvariant(), false, string.IsNullOrEmpty(path) ? "/" : path);
        if (parts.Length < 3 || parts[0] is not ("api" or "apis"))
        {
            return nonResource;
        }
        var rest = parts.AsSpan(1);
        var group = "";
        if (parts[0] == "apis")
        {
            if (rest.Length < 3)
            {
                return nonResource;
            }
            group = rest[0];
            rest = rest[1..];
        }
        var version = rest[0];
        rest = rest[1..];
        var verb = method.ToUpperInvariant() switch
        {
            "POST" => "create",
            "GET" or "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        };
        var ns = "";
        if (rest is ["namespaces", var n, ..])
        {
            ns = n;
            // namespaces/<ns>/<resource>/…, except a namespace's own subresources (namespaces/<ns>/status, /finalize).
            if (rest.Length > 2 && rest[2] is not ("status" or "finalize"))
            {
                rest = rest[2..];
            }
        }
        var resource = rest.Length > 0 ? rest[0] : "";
        var name = rest.Length > 1 ? rest[1] : "";
        var subresource = rest.Length > 2 ? rest[2] : "";
        if (name.Length == 0 && verb == "get")
        {
            verb = query("watch") is "1" or "true" or "True" ? "watch" : "list";
            if (ExactName(query("fieldSelector")) is { } selected)
            {
                name = selected;
            }
        }
        if (name.Length == 0 && verb == "delete")
        {
            verb = "deletecollection";
        }
        return new RequestAttributes(user, verb, true, path!, group, version, resource, subresource, ns, name);
    }

    /// <summary>metadata.name=X (or ==X) as the whole field selector: the request is for X alone.</summary>
    private static string? ExactName(string? fieldSelector)
    {
        if (string.IsNullOrEmpty(fieldSelector) || fieldSelector.Contains(',', StringComparison.Ordinal))
        {
            return null;
        }
        foreach (var op in new[] { "==", "=" })
        {
            var at = fieldSelector.IndexOf(op, StringComparison.Ordinal);
            if (at > 0 && fieldSelector[..at].Trim() == "metadata.name" && !fieldSelector[..at].EndsWith('!'))
            {
                var value = fieldSelector[(at + op.Length)..].Trim();
                return value.Length > 0 && !value.Contains('/', StringComparison.Ordinal) ? value : null;
            }
        }
        return null;
    }

    /// <summary>
    /// kube-apiserver's Forbidden message: `User "x" cannot list resource "pods" in API group "" in the namespace "default"`,
    /// `… at the cluster scope`, or `User "x" cannot get path "/apis"`.
    /// </summary>
    public string ForbiddenReason()
    {
        if (!IsResourceRequest)
        {
            return $"User \"{User.Name}\" cannot {Verb} path \"{Path}\"";
        }
        var resource = Subresource.Length > 0 ? $"{Resource}/{Subresource}" : Resource;
        return Namespace.Length > 0
            ? $"User \"{User.Name}\" cannot {Verb} resource \"{resource}\" in API group \"{ApiGroup}\" in the namespace \"{Namespace}\""
            : $"User \"{User.Name}\" cannot {Verb} resource \"{resource}\" in API group \"{ApiGroup}\" at the cluster scope";
    }

    /// <summary>The whole message of the 403 Status: `pods "web" is forbidden: …` (apierrors.NewForbidden).</summary>
    public string ForbiddenMessage()
    {
        if (!IsResourceRequest || Resource.Length == 0)
        {
            return $"forbidden: {ForbiddenReason()}";
        }
        var qualified = ApiGroup.Length == 0 ? Resource : $"{Resource}.{ApiGroup}";
        return Name.Length > 0 ? $"{qualified} \"{Name}\" is forbidden: {ForbiddenReason()}" : $"{qualified} is forbidden: {ForbiddenReason()}";
    }
}
