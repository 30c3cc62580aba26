namespace PodMigrate.Core.Errors;

/// <summary>What went wrong, in the terms a caller acts on; mirrors the gRPC codes it maps to at the edge.</summary>
public enum ErrorKind
{
    Internal,
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    DataLoss,
    Unavailable,
    DeadlineExceeded,
    Cancelled,
    Aborted,
    Unimplemented,
}
