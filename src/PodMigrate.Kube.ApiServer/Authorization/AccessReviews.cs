using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// The self-review APIs kubectl uses to ask the server about the caller: SelfSubjectAccessReview
/// (authorization.k8s.io/v1, `kubectl auth can-i`) answers whether the caller may do what the spec describes, through the
/// same authorizer as real requests; SelfSubjectReview (authentication.k8s.io, `kubectl auth whoami`) returns who the
/// server thinks the caller is. Both are create-only and stored nowhere, as in kube-apiserver.
/// </summary>
internal static class AccessReviews
{
    public const string AuthorizationGroup = "authorization.k8s.io";
    public const string AuthenticationGroup = "authentication.k8s.io";

    /// <summary>The review a POST to <paramref name="path"/> asks for, or null when the path is not a review.</summary>
    public static string? Kind(string method, string path)
    {
        if (!HttpMethods.IsPost(method))
        {
            return null;
        }
        return path.TrimEnd('/').Split('/', StringSplitOptions.RemoveEmptyEntries) switch
        {
            ["apis", AuthorizationGroup, "v1", "selfsubjectaccessreviews"] => "SelfSubjectAccessReview",
            ["apis", AuthenticationGroup, "v1" or "v1beta1" or "v1alpha1", "selfsubjectreviews"] => "SelfSubjectReview",
            _ => null,
        };
    }

    /// <summary>The answered review (what the POST returns with 201).</summary>
    public static JsonObject Answer(string kind, JsonObject request, UserInfo user, Func<RequestAttributes, (bool Allowed, string Reason)> authorize)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(authorize);
        var metadata = request["metadata"] as JsonObject ?? [];
        if (kind == "SelfSubjectReview")
        {
            return new JsonObject
            {
                ["kind"] = kind,
                ["apiVersion"] = request["apiVersion"]?.DeepClone() ?? $"{AuthenticationGroup}/v1",
                ["metadata"] = metadata.DeepClone(),
                ["status"] = new JsonObject
                {
                    ["userInfo"] = new JsonObject
                    {
                        ["username"] = user.Name,
                        ["uid"] = user.Uid,
                        ["groups"] = new JsonArray(user.Groups.Select(g => (JsonNode?)g).ToArray()),
                    },
                },
            };
        }
        var spec = request["spec"] as JsonObject ?? throw PodMigrateException.InvalidArgument("SelfSubjectAccessReview.spec is required");
        RequestAttributes attributes;
        if (spec["resourceAttributes"] is JsonObject resource)
        {
            attributes = new RequestAttributes(user, Str(resource, "verb"), true, "",
                Str(resource, "group"), Str(resource, "version"), Str(resource, "resource"), Str(resource, "subresource"), Str(resource, "namespace"), Str(resource, "name"));
        }
        else if (spec["nonResourceAttributes"] is JsonObject nonResource)
        {
            attributes = new RequestAttributes(user, Str(nonResource, "verb"), false, Str(nonResource, "path"));
        }
        else
        {
            throw PodMigrateException.InvalidArgument("SelfSubjectAccessReview is invalid: spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified");
        }
        var (allowed, reason) = authorize(attributes);
        var status = new JsonObject { ["allowed"] = allowed };
        if (reason.Length > 0)
        {
            status["reason"] = reason;
        }
        return new JsonObject
        {
            ["kind"] = kind,
            ["apiVersion"] = $"{AuthorizationGroup}/v1",
            ["metadata"] = metadata.DeepClone(),
            ["spec"] = spec.DeepClone(),
            ["status"] = status,
        };
    }

    private static string Str(JsonObject obj, string field) => obj[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
}
