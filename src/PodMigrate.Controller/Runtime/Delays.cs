namespace PodMigrate.Controller.Runtime;

/// <summary>The waits of the runtime's loops (informer retries, leader election), on the injected clock.</summary>
internal static class Delays
{
    /// <summary>Waits <paramref name="delay"/> on <paramref name="time"/>: true when it passed, false when the token was cancelled first.</summary>
    public static async Task<bool> TryDelayAsync(this TimeProvider time, TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, time, cancellationToken);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
