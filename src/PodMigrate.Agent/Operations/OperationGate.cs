using System.Collections.Concurrent;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Operations;

/// <summary>
/// One operation per container at a time: a second checkpoint, resume or discard of a container that is busy is
/// refused with FailedPrecondition naming what holds it, instead of racing it.
/// </summary>
internal sealed class OperationGate
{
    private readonly ConcurrentDictionary<string, string> _busy = new(StringComparer.Ordinal);

    /// <summary>What holds <paramref name="containerId"/>, or null.</summary>
    public string? HolderOf(string containerId) => _busy.TryGetValue(containerId, out var holder) ? holder : null;

    public IDisposable Enter(string containerId, string operation)
    {
        if (!_busy.TryAdd(containerId, operation))
        {
            throw PodMigrateException.FailedPrecondition(
                $"container {containerId} is busy with {HolderOf(containerId) ?? "another operation"}; try again when it has finished");
        }
        return new Release(this, containerId);
    }

    private sealed class Release(OperationGate gate, string containerId) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate._busy.TryRemove(containerId, out _);
            }
        }
    }
}
