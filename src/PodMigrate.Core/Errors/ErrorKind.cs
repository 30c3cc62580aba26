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

    /// <summary>The caller or the data is not trusted for this (e.g. a checkpoint without a valid agent signature).</summary>
    PermissionDenied,
}
