using System.Net.Sockets;
using System.Security.Authentication;
using Grpc.Core;

namespace PodMigrate.Core.Errors;

/// <summary>The one place where error kinds and gRPC status codes meet, in both directions.</summary>
public static class ErrorMapping
{
    public static StatusCode ToStatusCode(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ErrorKind.DataLoss => StatusCode.DataLoss,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        ErrorKind.Cancelled => StatusCode.Cancelled,
        ErrorKind.Aborted => StatusCode.Aborted,
        ErrorKind.Unimplemented => StatusCode.Unimplemented,
        ErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        _ => StatusCode.Internal,
    };

    public static ErrorKind ToErrorKind(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument or StatusCode.OutOfRange => ErrorKind.InvalidArgument,
        StatusCode.NotFound => ErrorKind.NotFound,
        StatusCode.AlreadyExists => ErrorKind.AlreadyExists,
        StatusCode.FailedPrecondition => ErrorKind.FailedPrecondition,
        StatusCode.ResourceExhausted => ErrorKind.ResourceExhausted,
        StatusCode.DataLoss => ErrorKind.DataLoss,
        StatusCode.Unavailable => ErrorKind.Unavailable,
        StatusCode.DeadlineExceeded => ErrorKind.DeadlineExceeded,
        StatusCode.Cancelled => ErrorKind.Cancelled,
        StatusCode.Aborted => ErrorKind.Aborted,
        StatusCode.Unimplemented => ErrorKind.Unimplemented,
        StatusCode.PermissionDenied => ErrorKind.PermissionDenied,
        _ => ErrorKind.Internal,
    };

    /// <summary>The server edge: a typed error becomes its status (the message, then its details such as a CRIU log excerpt).</summary>
    public static Status ToStatus(PodMigrateException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new Status(ToStatusCode(exception.Kind), exception.Details is null ? exception.Message : $"{exception.Message}\n{exception.Details}");
    }

    /// <summary>
    /// The client edge, for every client of ours (agent, containerd, CRI): a remote status becomes a typed error naming
    /// what was being done; a call that never reached the server is Unavailable with the transport's reasons
    /// (<see cref="TransportFailure"/>).
    /// </summary>
    public static PodMigrateException ToException(RpcException exception, string doing)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return TransportFailure(exception) is { } reasons
            ? new(ErrorKind.Unavailable, $"{doing}: {reasons}", exception)
            : new(ToErrorKind(exception.StatusCode), $"{doing}: {exception.Status.Detail}", exception);
    }

    /// <summary>
    /// The reasons, outermost first, when a call failed in the transport (connect refused, no such host, a TLS handshake
    /// refused by either side, TLS spoken to a cleartext port); null when the status came from the other side or from
    /// message handling. grpc-dotnet puts the cause in the status' DebugException but calls only socket and IO errors
    /// Unavailable: a server certificate the client itself refuses (untrusted, expired, for another name) arrives as
    /// Internal, an AuthenticationException under an HttpRequestException.
    /// </summary>
    public static string? TransportFailure(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception.Status.DebugException is not { } debug || exception.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal))
        {
            return null;
        }
        var reasons = new List<string>();
        var transport = false;
        for (Exception? cause = debug; cause is not null; cause = cause.InnerException)
        {
            reasons.Add(cause.Message);
            transport |= IsTransport(cause);
        }
        return transport ? string.Join(": ", reasons.Distinct()) : null;
    }

    // Any failure of the HTTP exchange itself (the request never got a gRPC answer) is the transport's: under load a client
    // certificate the server refuses after a TLS 1.3 handshake has surfaced in more than one shape, not only as an IO error.
    private static bool IsTransport(Exception cause) => cause switch
    {
        HttpRequestException => true,
        AuthenticationException or SocketException or IOException or TimeoutException => true,
        _ => false,
    };
}
