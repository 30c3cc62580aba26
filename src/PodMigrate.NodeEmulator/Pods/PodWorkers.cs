using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>
/// The pods bound to this node, one <see cref="PodWorker"/> per uid (kubelet's pod workers), fed by the pod watch;
/// and housekeeping: removing the sandboxes this emulator made for pods the API server no longer has. Mirror pods
/// (kubernetes.io/config.mirror) are never run; their changes go to <see cref="MirrorPodChanged"/>.
/// </summary>
internal sealed class PodWorkers : IAsyncDisposable
{
    private readonly PodWorkerContext _context;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (PodWorker Worker, Task Run)> _workers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    public PodWorkers(PodWorkerContext context) => _context = context;

    /// <summary>Called when a mirror pod on this node changes or goes (the agent mirror pod re-checks itself).</summary>
    public Action? MirrorPodChanged { get; set; }

    public void Upsert(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        if (IsMirror(pod))
        {
            MirrorPodChanged?.Invoke();
            return;
        }
        if (pod.Spec.NodeName != _context.NodeName || string.IsNullOrEmpty(pod.Metadata.Uid))
        {
            return;
        }
        lock (_gate)
        {
            if (_workers.TryGetValue(pod.Metadata.Uid, out var existing))
            {
                existing.Worker.Update(pod);
                return;
            }
            if (_stopping.IsCancellationRequested)
            {
                return;
            }
            var worker = new PodWorker(_context, pod);
            _workers[worker.Uid] = (worker, RunWorkerAsync(worker, _stopping.Token));
            var key = pod.Key();
            EmulatorLog.PodAccepted(_context.Logger, key, worker.Uid);
        }
    }

    public void Deleted(V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        if (IsMirror(pod))
        {
            MirrorPodChanged?.Invoke();
            return;
        }
        lock (_gate)
        {
            if (pod.Metadata.Uid is { } uid && _workers.TryGetValue(uid, out var existing))
            {
                existing.Worker.MarkGone();
            }
        }
    }

    /// <summary>The uids of the pods being worked on.</summary>
    public IReadOnlySet<string> Uids()
    {
        lock (_gate)
        {
            return _workers.Keys.ToHashSet(StringComparer.Ordinal);
        }
    }

    /// <summary>Housekeeping every interval, after the first full list of pods (before it, every sandbox would look orphaned).</summary>
    public async Task RunHousekeepingAsync(Task synced, CancellationToken cancellationToken)
    {
        await synced.WaitAsync(cancellationToken);
        using var timer = new PeriodicTimer(_context.Options.HousekeepingInterval, _context.Time);
        do
        {
            try
            {
                await RemoveOrphanedSandboxesAsync(cancellationToken);
            }
            catch (PodMigrateException e)
            {
                EmulatorLog.HousekeepingFailed(_context.Logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }

    /// <summary>
    /// Removes the sandboxes this emulator created (its node and cluster labels) whose pod has no worker, i.e. is not in
    /// the API server: left by an emulator that crashed or stopped before the pod was deleted. Never touches others.
    /// </summary>
    public async Task<int> RemoveOrphanedSandboxesAsync(CancellationToken cancellationToken)
    {
        // Sandboxes first, then the workers: a sandbox made after the listing is not in it, one made before has its worker.
        var sandboxes = await _context.Cri.Runtime.ListPodSandboxAsync(_context.OwnSandboxes(podUid: null), cancellationToken);
        var live = Uids();
        var removed = 0;
        foreach (var sandbox in sandboxes.Where(s => !live.Contains(s.Metadata.Uid)))
        {
            var m = sandbox.Metadata;
            EmulatorLog.OrphanRemoving(_context.Logger, m.Namespace + "/" + m.Name, m.Uid, sandbox.Id);
            await _context.Runner.RemoveSandboxAsync(sandbox.Id, sandbox.Metadata, gracePeriod: null, cancellationToken);
            removed++;
        }
        return removed;
    }

    /// <summary>Stops every worker (the pods keep running, as when kubelet stops) and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        List<(PodWorker Worker, Task Run)> workers;
        lock (_gate)
        {
            workers = [.. _workers.Values];
        }
        foreach (var (_, run) in workers)
        {
            await run;
        }
        _stopping.Dispose();
    }

    private async Task RunWorkerAsync(PodWorker worker, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await worker.RunAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The emulator is stopping.
        }
        finally
        {
            await worker.DisposeAsync();
            lock (_gate)
            {
                _workers.Remove(worker.Uid);
            }
        }
    }

    private static bool IsMirror(V1Pod pod) => pod.Metadata.Annotations?.ContainsKey(EmulatorLabels.ConfigMirror) == true;
}
