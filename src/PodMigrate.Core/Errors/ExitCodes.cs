namespace PodMigrate.Core.Errors;

/// <summary>
/// The process edge of every PodMigrate binary (the CLI, podmigrate-agent): exit codes that tell failure kinds apart, for
/// scripts (documented in README.md), and the wrapper that turns a typed error into its message and its code.
/// </summary>
public static class ExitCodes
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

    /// <summary>
    /// Runs a command's body: a <see cref="PodMigrateException"/> becomes "error: message" (and its details) on stderr and
    /// the exit code of its kind; cancellation through <paramref name="cancellationToken"/> (Ctrl-C, SIGTERM) becomes
    /// "cancelled" and 130. Anything else is a bug and propagates.
    /// </summary>
    public static Task<int> RunAsync(Func<Task<int>> action, CancellationToken cancellationToken)
        => RunAsync(action, Console.Error, cancellationToken);

    /// <inheritdoc cref="RunAsync(Func{Task{int}}, CancellationToken)"/>
    public static async Task<int> RunAsync(Func<Task<int>> action, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return await action();
        }
        catch (PodMigrateException e)
        {
            await error.WriteLineAsync($"error: {e.Message}");
            if (e.Details is { Length: > 0 } details)
            {
                await error.WriteLineAsync(details);
            }
            return For(e.Kind);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync("cancelled");
            return Cancelled;
        }
    }
}
