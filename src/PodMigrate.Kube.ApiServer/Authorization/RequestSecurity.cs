using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// The step of the request pipeline before routing, as kube-apiserver's filters (authentication, then authorization):
/// who is asking (401 when nobody the server knows), then whether they may (403 with kube-apiserver's Forbidden Status).
/// With no credentials configured, authentication is off and every request is "system:unsecured" in system:masters (what
/// kube-apiserver's old insecure port did); with no authorizer, everything authenticated is allowed (AlwaysAllow).
/// Also answers the self-reviews (<see cref="AccessReviews"/>), which need the caller's identity.
/// </summary>
internal sealed partial class RequestSecurity(RequestAuthenticator authenticator, RbacAuthorizer? authorizer, ILogger logger)
{
    private static readonly UserInfo Unsecured = new("system:unsecured", "", [UserInfo.MastersGroup, UserInfo.AuthenticatedGroup]);

    /// <summary>The Status to refuse the request with (401 or 403), or null to serve it.</summary>
    public async Task<(int Code, JsonObject Status)?> CheckAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var user = Unsecured;
        if (authenticator.Enabled)
        {
            var certificate = authenticator.AcceptsClientCertificates ? await context.Connection.GetClientCertificateAsync(context.RequestAborted) : null;
            if (authenticator.Authenticate(certificate, context.Request.Headers.Authorization.ToString()) is not { } authenticated)
            {
                return (401, ApiStatusException.FailureStatus(401, "Unauthorized", "Unauthorized"));
            }
            user = authenticated;
        }
        context.Items[typeof(UserInfo)] = user;
        var request = context.Request;
        var attributes = RequestAttributes.FromHttp(user, request.Method, request.Path.Value ?? "/", q => request.Query[q].ToString() is { Length: > 0 } v ? v : null);
        if (Authorize(attributes).Allowed)
        {
            return null;
        }
        LogForbidden(logger, attributes.ForbiddenReason());
        var details = new JsonObject { ["group"] = attributes.ApiGroup, ["kind"] = attributes.Resource };
        if (attributes.Name.Length > 0)
        {
            details["name"] = attributes.Name;
        }
        return (403, ApiStatusException.FailureStatus(403, "Forbidden", attributes.ForbiddenMessage(), attributes.IsResourceRequest ? details : null));
    }

    public (bool Allowed, string Reason) Authorize(RequestAttributes attributes)
        => authorizer?.Authorize(attributes) ?? (true, "");

    /// <summary>The answer to a self-review POST (201), or null when the request is not one.</summary>
    public async Task<JsonObject?> TryReviewAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (AccessReviews.Kind(context.Request.Method, context.Request.Path.Value ?? "") is not { } kind)
        {
            return null;
        }
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        JsonObject body;
        if (!ReviewProtobuf.IsProtobuf(context.Request.ContentType))
        {
            body = JsonNode.Parse(bytes.Span) as JsonObject ?? throw PodMigrateException.InvalidArgument("the request body must be a JSON object");
        }
        else
        {
            // A SelfSubjectReview carries nothing the answer needs; a SelfSubjectAccessReview's spec is read from protobuf.
            body = kind == "SelfSubjectReview" ? [] : ReviewProtobuf.SelfSubjectAccessReview(bytes);
        }
        var user = context.Items[typeof(UserInfo)] as UserInfo ?? Unsecured;
        return AccessReviews.Answer(kind, body, user, Authorize);
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "RBAC: forbidden: {Reason}")]
    private static partial void LogForbidden(ILogger logger, string reason);
}
