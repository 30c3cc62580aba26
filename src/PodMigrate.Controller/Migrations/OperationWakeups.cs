using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// Queues a migration the moment an agent operation it waits for ends, instead of at its next poll. A phase that leaves
/// a running operation asks for a wakeup and returns its poll delay as before; one WatchOperation stream per operation
/// (the agent sends the operation at every change and ends with the done one) then queues the migration's key when it
/// ends. A watch that cannot be had (an older agent, a broken connection) costs only the poll's latency, which was on the
/// pause's path: after a checkpoint's publication the controller saw it 0.25–0.5 s late (README, Performance).
/// </summary>
internal sealed class OperationWakeups : IDisposable
{
    /// <summary>How long one watch may last: longer operations are seen by the polls alone.</summary>
    private static readonly TimeSpan MaxWatch = TimeSpan.FromMinutes(30);

    private readonly Action<ObjectKey> _wake;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _watches = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    /// <param name="wake">Queues a migration's key (the reconcile runner's queue).</param>
    public OperationWakeups(Action<ObjectKey> wake, ILogger logger)
    {
        _wake = wake;
        _logger = logger;
    }

    /// <summary>Operations being watched now.</summary>
    public int Watching => _watches.Count;

    /// <summary>
    /// Queues <paramref name="key"/> when the operation ends (at most one watch per operation; idempotent). Returns the
    /// watch, which never fails; callers go on without it.
    /// </summary>
    public Task WakeWhenDone(AgentClient agent, string operationId, ObjectKey key)
    {
        ArgumentNullException.ThrowIfNull(agent);
        return _stopping.IsCancellationRequested
            ? Task.CompletedTask
            : _watches.GetOrAdd(operationId, id => new Lazy<Task>(() => Task.Run(() => WatchAsync(agent, id, key)))).Value;
    }

    private async Task WatchAsync(AgentClient agent, string operationId, ObjectKey key)
    {
        try
        {
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            bounded.CancelAfter(MaxWatch);
            await foreach (var operation in agent.WatchOperationAsync(operationId, bounded.Token))
            {
                if (operation.Done)
                {
                    _wake(key);
                    return;
                }
            }
        }
        catch (PodMigrateException e)
        {
            ControllerLog.OperationWatchFailed(_logger, operationId, e.Kind, e.Message);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // The controller is stopping (or the watch outlived its bound): the polls go on without it.
        }
        finally
        {
            _watches.TryRemove(operationId, out _);
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }
}
