using Google.Protobuf.WellKnownTypes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Operations;

/// <summary>The bound of one checkpoint, prepare or restore: the request's timeout, or the agent's default.</summary>
internal static class OperationDeadline
{
    /// <summary>
    /// A token source linked to <paramref name="cancellationToken"/> that cancels after <paramref name="requested"/>
    /// (null: <paramref name="fallback"/>), which is <paramref name="timeout"/> (for the message when it expires); a
    /// timeout that is not positive is InvalidArgument. The caller disposes it.
    /// </summary>
    public static CancellationTokenSource Start(Duration? requested, TimeSpan fallback, CancellationToken cancellationToken, out TimeSpan timeout)
    {
        timeout = requested is { } t ? t.ToTimeSpan() : fallback;
        if (timeout <= TimeSpan.Zero)
        {
            throw PodMigrateException.InvalidArgument($"timeout must be positive, not {timeout}");
        }

        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        return deadline;
    }
}
