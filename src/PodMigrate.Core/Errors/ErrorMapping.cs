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

    /// <summary>The client edge: a remote status becomes a typed error naming what was being done.</summary>
    public static PodMigrateException ToException(RpcException exception, string doing)
        => new(ToErrorKind(exception.StatusCode), $"{doing}: {exception.Status.Detail}", exception);
}
