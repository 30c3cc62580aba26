namespace PodMigrate.Integration.Tests.Restore;

/// <summary>Runs a removal when the test ends, with its own time budget (the test's token may be what ended it).</summary>
internal sealed class AsyncCleanup(Func<CancellationToken, Task> cleanup) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await cleanup(cts.Token);
    }
}
