using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>Exit codes that tell failure kinds apart, for scripts (documented in README.md).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int NotFound = 3;
    public const int FailedPrecondition = 4;
    public const int Unavailable = 5;
    public const int DataLoss = 6;
    public const int ResourceExhausted = 7;
    public const int DeadlineExceeded = 8;
    public const int AlreadyExists = 9;
    public const int PermissionDenied = 10;
    public const int Cancelled = 130;

    public static int For(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => Usage,
        ErrorKind.NotFound => NotFound,
        ErrorKind.FailedPrecondition => FailedPrecondition,
        ErrorKind.Unavailable => Unavailable,
        ErrorKind.DataLoss => DataLoss,
        ErrorKind.ResourceExhausted => ResourceExhausted,
        ErrorKind.DeadlineExceeded => DeadlineExceeded,
        ErrorKind.AlreadyExists => AlreadyExists,
        ErrorKind.PermissionDenied => PermissionDenied,
        ErrorKind.Cancelled => Cancelled,
        _ => Failure,
    };
}
