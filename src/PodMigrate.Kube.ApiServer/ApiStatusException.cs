using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// A refusal that carries its whole metav1.Status (code, reason, details such as causes and retryAfterSeconds), for the
/// answers the error kinds cannot express: an eviction's 429 with its disruption-budget cause, a webhook's own Status.
/// </summary>
internal sealed class ApiStatusException(JsonObject status) : Exception(status["message"]?.GetValue<string>())
{
    public JsonObject Status { get; } = status;

    public int Code => (int)(Status["code"].AsLong() ?? 500);

    public static ApiStatusException Of(int code, string reason, string message, JsonObject? details = null)
        => new(FailureStatus(code, reason, message, details));

    /// <summary>
    /// The one builder of a failure's metav1.Status, for every answer the server refuses with: kind, apiVersion,
    /// status, message, the reason (left out when there is none), details, code.
    /// </summary>
    public static JsonObject FailureStatus(int code, string? reason, string message, JsonObject? details = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
        };
        if (!string.IsNullOrEmpty(reason))
        {
            status["reason"] = reason;
        }
        if (details is not null)
        {
            status["details"] = details;
        }
        status["code"] = code;
        return status;
    }

    /// <summary>apierrors.NewTooManyRequests with the causes an eviction adds.</summary>
    public static ApiStatusException TooManyRequests(string message, int retryAfterSeconds, string causeReason, string causeMessage)
        => Of(429, "TooManyRequests", message, new JsonObject
        {
            ["causes"] = new JsonArray(new JsonObject { ["reason"] = causeReason, ["message"] = causeMessage }),
            ["retryAfterSeconds"] = retryAfterSeconds,
        });

    /// <summary>apierrors.NewInternalError: "Internal error occurred: …".</summary>
    public static ApiStatusException Internal(string message)
        => Of(500, "InternalError", $"Internal error occurred: {message}", new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["message"] = message }) });
}
