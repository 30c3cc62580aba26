using System.Net;
using System.Text.Json;
using k8s.Autorest;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>
/// The API server's answer to a failed request, kept as the inner exception of the <see cref="PodMigrateException"/>
/// the client throws, the way an RpcException sits under a translated gRPC error.
/// </summary>
public sealed class KubeStatusException : Exception
{
    public KubeStatusException(HttpStatusCode code, KubeStatus status)
        : base(status?.Message ?? code.ToString())
    {
        Code = code;
        Status = status ?? new KubeStatus();
    }

    public KubeStatusException()
        : this(HttpStatusCode.InternalServerError, new KubeStatus())
    {
    }

    public KubeStatusException(string message)
        : this(HttpStatusCode.InternalServerError, new KubeStatus { Message = message })
    {
    }

    public KubeStatusException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = HttpStatusCode.InternalServerError;
        Status = new KubeStatus { Message = message };
    }

    public HttpStatusCode Code { get; }

    public KubeStatus Status { get; }

    /// <summary>The Status reason (NotFound, Conflict, Expired…), or the HTTP status name when the server gave none.</summary>
    public string Reason => string.IsNullOrEmpty(Status.Reason) ? Code.ToString() : Status.Reason;
}

/// <summary>The one place where Kubernetes Status answers become error kinds.</summary>
public static class KubeApiErrors
{
    public static ErrorKind ToErrorKind(HttpStatusCode code, string? reason) => (int)code switch
    {
        400 or 422 => ErrorKind.InvalidArgument,
        404 => ErrorKind.NotFound,
        409 when reason == "AlreadyExists" => ErrorKind.AlreadyExists,
        // Conflict: a stale resourceVersion or a failed precondition; the caller re-reads and retries.
        409 => ErrorKind.Aborted,
        // Expired/Gone: the watch or list version is older than the server keeps; the caller re-lists.
        410 => ErrorKind.FailedPrecondition,
        // Unauthorized / Forbidden: nothing a retry fixes; the credentials or RBAC must change.
        401 or 403 => ErrorKind.FailedPrecondition,
        405 or 415 => ErrorKind.Unimplemented,
        429 or 502 or 503 => ErrorKind.Unavailable,
        504 => ErrorKind.DeadlineExceeded,
        _ => ErrorKind.Internal,
    };

    /// <summary>
    /// A failure of the KubernetesClient package as a <see cref="PodMigrateException"/>: a non-2xx answer (HttpOperationException, its
    /// body a Status), a watch ERROR event (KubernetesException), an unreachable server, a request timeout. Null for what is not
    /// the server's or the transport's (the caller's own cancellation, a bug): those propagate as they are.
    /// </summary>
    public static PodMigrateException? Translate(Exception exception, string doing, CancellationToken cancellationToken)
    {
        switch (exception)
        {
            case PodMigrateException:
                return null;
            case HttpOperationException { Response: { } response }:
                return ToException(response.StatusCode, ParseStatus(response.Content, response.StatusCode), doing);
            case k8s.KubernetesException { Status: { } s }:
                var status = new KubeStatus { Kind = "Status", Status = s.Status, Code = s.Code, Reason = s.Reason, Message = s.Message };
                var code = s.Code is { } c and >= 100 and < 600 ? (HttpStatusCode)c : HttpStatusCode.InternalServerError;
                return ToException(code, status, doing);
            case OperationCanceledException when !cancellationToken.IsCancellationRequested:
                // The package's per-request timeout (HttpClientTimeout): the caller did not cancel.
                return new PodMigrateException(ErrorKind.DeadlineExceeded, $"{doing}: no answer in time: {exception.Message}", exception);
            case HttpRequestException or IOException:
                return PodMigrateException.Unavailable($"{doing}: the API server is unreachable or the stream broke: {exception.Message}", exception);
            case JsonException:
                return new PodMigrateException(ErrorKind.Internal, $"{doing}: malformed answer: {exception.Message}", exception);
            default:
                return null;
        }
    }

    /// <summary>
    /// Runs one typed call of the package (<c>api.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync(…)</c>), its failures
    /// translated as <see cref="Translate"/> does; <paramref name="doing"/> says what was asked ("get lease ns/name").
    /// </summary>
    public static async Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> call, string doing, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return await call(cancellationToken);
        }
        catch (Exception e) when (Translate(e, doing, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    private static KubeStatus ParseStatus(string? text, HttpStatusCode code)
    {
        if (!string.IsNullOrEmpty(text))
        {
            try
            {
                if (JsonSerializer.Deserialize(text, KubeClientJsonContext.Default.KubeStatus) is { Kind: "Status" } status)
                {
                    return status;
                }
            }
            catch (JsonException)
            {
                // Not a Status (a proxy's HTML page, plain text): keep the text as the message.
            }
        }
        text ??= "";
        return new KubeStatus { Code = (int)code, Message = text.Length <= 512 ? text : text[..512] + "…" };
    }

    public static PodMigrateException ToException(HttpStatusCode code, KubeStatus status, string doing)
    {
        ArgumentNullException.ThrowIfNull(status);
        var inner = new KubeStatusException(code, status);
        return new PodMigrateException(ToErrorKind(code, status.Reason), $"{doing}: {(int)code} {inner.Reason}: {status.Message}", inner);
    }

    /// <summary>The Status behind a failed API call, if the failure came from the API server.</summary>
    public static KubeStatusException? KubeStatus(this PodMigrateException exception)
        => exception?.InnerException as KubeStatusException;

    /// <summary>410 Gone / Expired: the resourceVersion is too old; list again and watch from the list's version.</summary>
    public static bool IsGone(this PodMigrateException exception) => exception.KubeStatus()?.Code == HttpStatusCode.Gone;

    /// <summary>409 Conflict on a stale resourceVersion or precondition.</summary>
    public static bool IsConflict(this PodMigrateException exception)
        => exception.KubeStatus() is { Code: HttpStatusCode.Conflict } s && s.Reason != "AlreadyExists";

    /// <summary>401 Unauthorized or 403 Forbidden.</summary>
    public static bool IsUnauthorized(this PodMigrateException exception)
        => exception.KubeStatus()?.Code is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;
}
