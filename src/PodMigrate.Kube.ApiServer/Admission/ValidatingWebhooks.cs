using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PodMigrate.Kube.ApiServer.Authentication;
using PodMigrate.Kube.Selectors;

namespace PodMigrate.Kube.ApiServer.Admission;

/// <summary>What admission sees of a request: the resource and operation it is for, the object, and who asks.</summary>
internal sealed record AdmissionAttributes(
    string Operation,
    string Group,
    string Version,
    string Resource,
    string Subresource,
    string KindGroup,
    string KindVersion,
    string Kind,
    string? Namespace,
    string Name,
    JsonObject? Object,
    JsonObject? OldObject,
    UserInfo User,
    bool DryRun);

/// <summary>
/// Validating admission webhooks as kube-apiserver calls them: the stored admissionregistration.k8s.io/v1
/// ValidatingWebhookConfigurations, each webhook whose rules (operations, apiGroups, apiVersions, resources with
/// subresources: "pods/eviction", "pods/*", "*/*"; scope), namespaceSelector and objectSelector match, is called with an
/// AdmissionReview v1 over HTTPS (the server verified against its clientConfig.caBundle, else the system roots) within
/// its timeoutSeconds (default 10, at most 30). A denial is the webhook's Status ("admission webhook "x" denied the
/// request: …", its code kept when at least 400); a failed call is a 500 under failurePolicy Fail (the default) and is
/// skipped under Ignore. Webhooks are called one after the other (kube-apiserver calls them in parallel; the outcome is
/// the same). Only clientConfig.url is reachable: this server has no Services to route a clientConfig.service to.
/// </summary>
internal sealed partial class ValidatingWebhooks(ObjectStore store, ILogger logger)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public async Task ValidateAsync(AdmissionAttributes request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (configurations, _) = store.List(BuiltInTypes.ValidatingWebhookConfigurations, null, Selector.Everything, Selector.Everything);
        foreach (var configuration in configurations.OrderBy(c => c["metadata"]?["name"]?.GetValue<string>(), StringComparer.Ordinal))
        {
            foreach (var webhook in (configuration["webhooks"] as JsonArray)?.OfType<JsonObject>() ?? [])
            {
                if (Applies(webhook, request))
                {
                    await CallAsync(webhook, request, cancellationToken);
                }
            }
        }
    }

    /// <summary>Rules, then the namespace and object selectors (an absent selector matches everything).</summary>
    internal bool Applies(JsonObject webhook, AdmissionAttributes request)
    {
        if (!(webhook["rules"] as JsonArray)?.OfType<JsonObject>().Any(rule => RuleMatches(rule, request)) ?? true)
        {
            return false;
        }
        if (webhook["namespaceSelector"] is JsonObject namespaceSelector && request.Namespace is { } ns)
        {
            JsonObject? labels;
            try
            {
                labels = store.Get(BuiltInTypes.Namespaces, null, ns)["metadata"]?["labels"] as JsonObject;
            }
            catch (PodMigrate.Core.Errors.PodMigrateException)
            {
                labels = null;
            }
            if (!LabelSelectors.Matches(namespaceSelector, labels))
            {
                return false;
            }
        }
        if (webhook["objectSelector"] is JsonObject objectSelector)
        {
            var newMatches = request.Object is { } o && LabelSelectors.Matches(objectSelector, o["metadata"]?["labels"] as JsonObject);
            var oldMatches = request.OldObject is { } old && LabelSelectors.Matches(objectSelector, old["metadata"]?["labels"] as JsonObject);
            if (!newMatches && !oldMatches)
            {
                return false;
            }
        }
        return true;
    }

    internal static bool RuleMatches(JsonObject rule, AdmissionAttributes request)
    {
        static bool Any(JsonNode? list, string value) => (list as JsonArray)?.Any(v => v?.GetValue<string>() is "*" || v?.GetValue<string>() == value) == true;
        if (!Any(rule["operations"], request.Operation) || !Any(rule["apiGroups"], request.Group) || !Any(rule["apiVersions"], request.Version))
        {
            return false;
        }
        var scope = rule["scope"]?.GetValue<string>() ?? "*";
        if ((scope == "Cluster" && request.Namespace is not null) || (scope == "Namespaced" && request.Namespace is null))
        {
            return false;
        }
        return (rule["resources"] as JsonArray)?.Select(r => r?.GetValue<string>() ?? "").Any(pattern =>
        {
            var slash = pattern.IndexOf('/', StringComparison.Ordinal);
            var resource = slash < 0 ? pattern : pattern[..slash];
            var subresource = slash < 0 ? "" : pattern[(slash + 1)..];
            return (resource == "*" || resource == request.Resource) && (subresource == "*" || subresource == request.Subresource);
        }) == true;
    }

    private async Task CallAsync(JsonObject webhook, AdmissionAttributes request, CancellationToken cancellationToken)
    {
        var name = webhook["name"]?.GetValue<string>() ?? "";
        var failurePolicy = webhook["failurePolicy"]?.GetValue<string>() ?? "Fail";
        var uid = Guid.NewGuid().ToString();
        JsonObject response;
        try
        {
            response = await SendAsync(webhook, Review(uid, request), cancellationToken);
            if (response["uid"]?.GetValue<string>() != uid)
            {
                throw new WebhookCallException($"expected response.uid=\"{uid}\", got \"{response["uid"]}\"");
            }
        }
        catch (WebhookCallException e)
        {
            if (failurePolicy == "Ignore")
            {
                LogWebhookIgnored(logger, name, e.Message);
                return;
            }
            LogWebhookFailed(logger, name, e.Message);
            throw ApiStatusException.Internal($"failed calling webhook \"{name}\": {e.Message}");
        }
        if (response["allowed"]?.GetValue<bool>() == true)
        {
            return;
        }
        throw Denied(name, response["status"] as JsonObject);
    }

    /// <summary>webhookerrors.ToStatusErr: the webhook's Status, a code of at least 400, its message prefixed.</summary>
    internal static ApiStatusException Denied(string webhookName, JsonObject? result)
    {
        var deniedBy = $"admission webhook \"{webhookName}\" denied the request";
        var status = (JsonObject?)result?.DeepClone() ?? [];
        var code = status["code"].AsLong() ?? 0;
        var message = status["message"]?.GetValue<string>();
        var reason = status["reason"]?.GetValue<string>();
        var text = !string.IsNullOrEmpty(message) ? $"{deniedBy}: {message}"
            : !string.IsNullOrEmpty(reason) ? $"{deniedBy}: {reason}"
            : $"{deniedBy} without explanation";
        var answer = ApiStatusException.FailureStatus(
            (int)Math.Max(code, 400), reason, text, status["details"] is JsonObject details ? (JsonObject)details.DeepClone() : null);
        return new ApiStatusException(answer);
    }

    private static JsonObject Review(string uid, AdmissionAttributes r)
    {
        JsonObject Gvk() => new() { ["group"] = r.KindGroup, ["version"] = r.KindVersion, ["kind"] = r.Kind };
        JsonObject Gvr() => new() { ["group"] = r.Group, ["version"] = r.Version, ["resource"] = r.Resource };
        var request = new JsonObject
        {
            ["uid"] = uid,
            ["kind"] = Gvk(),
            ["resource"] = Gvr(),
            ["requestKind"] = Gvk(),
            ["requestResource"] = Gvr(),
            ["name"] = r.Name,
            ["operation"] = r.Operation,
            ["userInfo"] = new JsonObject
            {
                ["username"] = r.User.Name,
                ["uid"] = r.User.Uid,
                ["groups"] = new JsonArray(r.User.Groups.Select(g => (JsonNode?)g).ToArray()),
            },
            ["object"] = r.Object?.DeepClone(),
            ["oldObject"] = r.OldObject?.DeepClone(),
            ["dryRun"] = r.DryRun,
            ["options"] = r.Operation switch
            {
                "CREATE" => new JsonObject { ["kind"] = "CreateOptions", ["apiVersion"] = "meta.k8s.io/v1" },
                "UPDATE" => new JsonObject { ["kind"] = "UpdateOptions", ["apiVersion"] = "meta.k8s.io/v1" },
                "DELETE" => new JsonObject { ["kind"] = "DeleteOptions", ["apiVersion"] = "meta.k8s.io/v1" },
                _ => null,
            },
        };
        if (r.Subresource.Length > 0)
        {
            request["subResource"] = r.Subresource;
            request["requestSubResource"] = r.Subresource;
        }
        if (r.Namespace is not null)
        {
            request["namespace"] = r.Namespace;
        }
        return new JsonObject { ["apiVersion"] = "admission.k8s.io/v1", ["kind"] = "AdmissionReview", ["request"] = request };
    }

    private static async Task<JsonObject> SendAsync(JsonObject webhook, JsonObject review, CancellationToken cancellationToken)
    {
        var clientConfig = webhook["clientConfig"] as JsonObject;
        var url = clientConfig?["url"]?.GetValue<string>();
        if (string.IsNullOrEmpty(url))
        {
            throw new WebhookCallException(clientConfig?["service"] is JsonObject service
                ? $"service {service["namespace"]}/{service["name"]} cannot be reached: this API server routes no Services (use clientConfig.url)"
                : "clientConfig has neither url nor service");
        }
        var seconds = webhook["timeoutSeconds"].AsLong() is { } s ? Math.Clamp(s, 1, 30) : (long)DefaultTimeout.TotalSeconds;
        var trust = new X509Certificate2Collection();
        if (clientConfig?["caBundle"]?.GetValue<string>() is { Length: > 0 } caBundle)
        {
            trust.ImportFromPem(Encoding.UTF8.GetString(Convert.FromBase64String(caBundle)));
        }
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => Trusted(certificate, errors, trust),
            },
        };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        try
        {
            using var content = new StringContent(review.ToJsonString(), Encoding.UTF8);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var answer = await client.PostAsync(url, content, deadline.Token);
            var body = await answer.Content.ReadAsStringAsync(deadline.Token);
            if (!answer.IsSuccessStatusCode)
            {
                throw new WebhookCallException($"failed to call webhook: the server responded with the status code {(int)answer.StatusCode} to Post \"{url}\"");
            }
            var parsed = JsonNode.Parse(body) as JsonObject;
            return parsed?["response"] as JsonObject ?? throw new WebhookCallException($"received invalid webhook response: no response in the AdmissionReview from \"{url}\"");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new WebhookCallException($"failed to call webhook: Post \"{url}\": context deadline exceeded");
        }
        catch (HttpRequestException e)
        {
            throw new WebhookCallException($"failed to call webhook: Post \"{url}\": {e.InnerException?.Message ?? e.Message}");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new WebhookCallException($"received invalid webhook response: {e.Message}");
        }
    }

    /// <summary>The name must match; the chain must end in the caBundle (or the system roots when there is none).</summary>
    private static bool Trusted(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection trust)
    {
        if (errors == SslPolicyErrors.None)
        {
            return trust.Count == 0 || ChainsTo(certificate, trust);
        }
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || trust.Count == 0)
        {
            return false;
        }
        return ChainsTo(certificate, trust);
    }

    private static bool ChainsTo(X509Certificate? certificate, X509Certificate2Collection trust)
    {
        if (certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "validating webhook {Webhook} failed (failurePolicy Fail): {Reason}")]
    private static partial void LogWebhookFailed(ILogger logger, string webhook, string reason);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "validating webhook {Webhook} failed, ignored (failurePolicy Ignore): {Reason}")]
    private static partial void LogWebhookIgnored(ILogger logger, string webhook, string reason);
}

internal sealed class WebhookCallException(string message) : Exception(message);
