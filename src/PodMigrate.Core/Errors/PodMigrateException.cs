namespace PodMigrate.Core.Errors;

/// <summary>
/// The one exception PodMigrate's own code throws for expected failures. The message names the subject
/// (container, checkpoint, path); <see cref="Details"/> carries extra lines such as a CRIU log excerpt.
/// </summary>
public sealed class PodMigrateException : Exception
{
    public PodMigrateException(ErrorKind kind, string message, Exception? innerException = null, string? details = null)
        : base(message, innerException)
    {
        Kind = kind;
        Details = details;
    }

    public PodMigrateException()
        : this(ErrorKind.Internal, "internal error")
    {
    }

    public PodMigrateException(string message)
        : this(ErrorKind.Internal, message)
    {
    }

    public PodMigrateException(string message, Exception innerException)
        : this(ErrorKind.Internal, message, innerException)
    {
    }

    public ErrorKind Kind { get; }

    public string? Details { get; }

    public static PodMigrateException NotFound(string message) => new(ErrorKind.NotFound, message);

    public static PodMigrateException InvalidArgument(string message) => new(ErrorKind.InvalidArgument, message);

    public static PodMigrateException FailedPrecondition(string message) => new(ErrorKind.FailedPrecondition, message);

    public static PodMigrateException PermissionDenied(string message, Exception? inner = null) => new(ErrorKind.PermissionDenied, message, inner);

    public static PodMigrateException Unavailable(string message, Exception? inner = null) => new(ErrorKind.Unavailable, message, inner);
}
