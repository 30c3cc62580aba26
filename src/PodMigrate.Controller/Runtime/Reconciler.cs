using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// Brings one object's world in line with its spec. Level-triggered: it gets a key, not an event, reads the current
/// state (from an informer's cache, or the API), and must be safe to run again at any time. Throwing retries the key
/// with backoff; <see cref="ReconcileResult.After"/> asks to be called again later even when nothing changes.
/// </summary>
internal interface IReconciler
{
    Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken cancellationToken);
}

/// <summary>What a reconcile asks for next.</summary>
internal readonly record struct ReconcileResult
{
    /// <summary>Null: nothing until the object changes again.</summary>
    public TimeSpan? RequeueAfter { get; private init; }

    public static ReconcileResult Done => default;

    /// <summary>Reconcile again after <paramref name="delay"/> (polling something the informers do not see, e.g. an agent's operation).</summary>
    public static ReconcileResult After(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(delay.Ticks, nameof(delay));
        return new ReconcileResult { RequeueAfter = delay };
    }
}

/// <summary>
/// Runs a reconciler over a work queue with N workers: each key is reconciled by one worker at a time; success forgets
/// its backoff (and honours <see cref="ReconcileResult.RequeueAfter"/>); an exception is logged with the key and retried
/// rate-limited. <see cref="RunAsync"/> can run again after it returns (one run per leadership term): the queue lives on
/// in between and keeps collecting keys, so a new term starts with everything that changed.
/// </summary>
internal sealed class ReconcileRunner
{
    private readonly IReconciler _reconciler;
    private readonly int _workers;
    private readonly ILogger _logger;

    public ReconcileRunner(string name, IReconciler reconciler, WorkQueue<ObjectKey> queue, int workers, ILogger<ReconcileRunner> logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(reconciler);
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentNullException.ThrowIfNull(logger);
        Name = name;
        Queue = queue;
        _reconciler = reconciler;
        _workers = workers;
        _logger = logger;
    }

    public string Name { get; }

    /// <summary>Where informer handlers put keys (<c>InformerHandler.OnAnyChange(o => runner.Queue.Add(ObjectKey.Of(o.Metadata)))</c>).</summary>
    public WorkQueue<ObjectKey> Queue { get; }

    /// <summary>
    /// Reconciles until <paramref name="cancellationToken"/> is cancelled or the queue shuts down, then waits for the
    /// reconciles in flight (they see the token) and returns. A reconcile interrupted this way is queued again.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        RuntimeLog.WorkersStarted(_logger, Name, _workers);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, _workers).Select(_ => Task.Run(() => WorkAsync(cancellationToken), CancellationToken.None)));
        }
        finally
        {
            RuntimeLog.WorkersStopped(_logger, Name);
        }
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            bool shutdown;
            ObjectKey key;
            try
            {
                (shutdown, key) = await Queue.GetAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            if (shutdown)
            {
                return;
            }
            if (cancellationToken.IsCancellationRequested)
            {
                // Handed a key while stopping (another worker's interrupted key, put back before this getter's cancellation
                // ran): it is not reconciled on a cancelled token, it stays queued for the next run.
                Queue.Add(key);
                Queue.Done(key);
                return;
            }
            try
            {
                await ReconcileOneAsync(key, cancellationToken);
            }
            finally
            {
                Queue.Done(key);
            }
        }
    }

    private async Task ReconcileOneAsync(ObjectKey key, CancellationToken cancellationToken)
    {
        using var scope = _logger.BeginScope(new KeyValuePair<string, object>[] { new("Controller", Name), new("ObjectKey", key.ToString()) });
        try
        {
            var result = await _reconciler.ReconcileAsync(key, cancellationToken);
            Queue.Forget(key);
            if (result.RequeueAfter is { } after)
            {
                RuntimeLog.ReconcileRequeued(_logger, Name, key.ToString(), (long)after.TotalMilliseconds);
                Queue.AddAfter(key, after);
            }
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped mid-reconcile (shutdown, or leadership lost): the key is not done; whoever runs next does it again.
            Queue.Add(key);
        }
        catch (PodMigrateException e)
        {
            var attempt = Queue.NumRequeues(key) + 1;
            var delay = Queue.AddRateLimited(key);
            RuntimeLog.ReconcileFailed(_logger, Name, key.ToString(), e.Kind, e.Message, attempt, (long)delay.TotalMilliseconds);
        }
        catch (Exception e)
        {
            // The worker loop is the boundary: a bug in one reconcile is logged with its stack and retried, not fatal to the others.
            var attempt = Queue.NumRequeues(key) + 1;
            var delay = Queue.AddRateLimited(key);
            RuntimeLog.ReconcileThrew(_logger, e, Name, key.ToString(), attempt, (long)delay.TotalMilliseconds);
        }
    }
}
