using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// Optional composition of the runtime: runs the informers (in every replica, so that a new leader starts with warm
/// caches), waits until all have synced, then runs the reconcile runners — under leader election when an elector is
/// given, for as many terms as this process wins. Stops everything when the token is cancelled, and fails when an
/// informer stops on its own. Register informer handlers before <see cref="RunAsync"/>.
/// </summary>
internal sealed class ControllerHost
{
    private readonly IReadOnlyList<IInformer> _informers;
    private readonly IReadOnlyList<ReconcileRunner> _runners;
    private readonly LeaderElector? _elector;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<Func<CancellationToken, Task>> _leaderLoops;

    /// <param name="leaderLoops">Loops that run beside the runners while this replica leads (the OOM guard); they end when their token is cancelled.</param>
    public ControllerHost(IReadOnlyList<IInformer> informers, IReadOnlyList<ReconcileRunner> runners, LeaderElector? elector, ILogger<ControllerHost> logger,
        IReadOnlyList<Func<CancellationToken, Task>>? leaderLoops = null)
    {
        _leaderLoops = leaderLoops ?? [];
        ArgumentNullException.ThrowIfNull(informers);
        ArgumentNullException.ThrowIfNull(runners);
        ArgumentNullException.ThrowIfNull(logger);
        _informers = informers;
        _runners = runners;
        _elector = elector;
        _logger = logger;
    }

    public IReadOnlyList<IInformer> Informers => _informers;

    public LeaderElector? Elector => _elector;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var informing = _informers.ToDictionary(i => Task.Run(() => i.RunAsync(stopping.Token), CancellationToken.None), i => i);
        try
        {
            var anInformerEnded = informing.Count == 0 ? Task.Delay(Timeout.Infinite, stopping.Token) : Task.WhenAny(informing.Keys).Unwrap();
            var synced = Task.WhenAll(_informers.Select(i => i.WaitForSyncAsync(stopping.Token)));
            if (await Task.WhenAny(synced, anInformerEnded) != synced)
            {
                await FailIfInformerEndedAsync(informing, stopping.Token);
            }
            await synced;
            RuntimeLog.HostSynced(_logger, string.Join(", ", _informers.Select(i => i.Name)));
            var work = _elector is null ? RunRunnersAsync(stopping.Token) : _elector.RunAsync(RunRunnersAsync, stopping.Token);
            if (await Task.WhenAny(work, anInformerEnded) != work)
            {
                await stopping.CancelAsync();
                await work;
                await FailIfInformerEndedAsync(informing, cancellationToken);
            }
            await work;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped before the informers synced.
        }
        finally
        {
            await stopping.CancelAsync();
            foreach (var runner in _runners)
            {
                runner.Queue.ShutDown();
            }
            // Their failures were reported above; stopping ones end without one.
            await Task.WhenAll(informing.Keys).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private Task RunRunnersAsync(CancellationToken cancellationToken)
        => Task.WhenAll(_runners.Select(r => r.RunAsync(cancellationToken)).Concat(_leaderLoops.Select(loop => loop(cancellationToken))));

    private async Task FailIfInformerEndedAsync(Dictionary<Task, IInformer> informing, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return;
        }
        var ended = informing.Where(kv => kv.Key.IsCompleted).OrderByDescending(kv => kv.Key.IsFaulted).FirstOrDefault();
        if (ended.Key is null)
        {
            return;
        }
        RuntimeLog.InformerStopped(_logger, ended.Value.Name);
        await ended.Key;
        throw new PodMigrateException(ErrorKind.Internal, $"informer {ended.Value.Name} stopped while the controller was running");
    }
}
