using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>
/// kubelet's API pod source: list the pods bound to the node (fieldSelector spec.nodeName), then watch from the list's
/// resourceVersion; on 410 Gone list again (pods that vanished meanwhile are reported deleted); on other failures
/// retry with capped back-off.
/// </summary>
internal sealed class PodSource(IKubernetesApi api, PodWorkers workers, NodeEmulatorOptions options, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan RetryInitial = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(30);

    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, V1Pod> _known = new(StringComparer.Ordinal);

    /// <summary>Completes once the first list has been handed to the workers.</summary>
    public Task Synced => _synced.Task;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var selector = $"spec.nodeName={options.NodeName}";
        string? resourceVersion = null;
        var delay = RetryInitial;
        while (true)
        {
            try
            {
                if (resourceVersion is null)
                {
                    var list = await api.ListAsync(KubeResources.V1Pods, null, new ListOptions { FieldSelector = selector }, cancellationToken);
                    Replace(list.Items);
                    resourceVersion = list.Metadata.ResourceVersion;
                    _synced.TrySetResult();
                }
                var watch = new ListOptions
                {
                    FieldSelector = selector,
                    ResourceVersion = resourceVersion,
                    TimeoutSeconds = (int)options.WatchTimeout.TotalSeconds,
                    AllowWatchBookmarks = true,
                };
                await foreach (var change in api.WatchAsync(KubeResources.V1Pods, null, watch, cancellationToken))
                {
                    resourceVersion = change.Resource.Metadata.ResourceVersion ?? resourceVersion;
                    Dispatch(change);
                    delay = RetryInitial;
                }
            }
            catch (PodMigrateException e) when (e.IsGone())
            {
                EmulatorLog.WatchExpired(logger, resourceVersion ?? "");
                resourceVersion = null;
            }
            catch (PodMigrateException e)
            {
                EmulatorLog.WatchFailed(logger, delay, e);
                await Task.Delay(delay, time, cancellationToken);
                delay = ExponentialBackoff.Doubled(delay, RetryMax);
            }
        }
    }

    private void Dispatch(WatchEvent<V1Pod> change)
    {
        var pod = change.Resource;
        if (change.Type == WatchEventType.Bookmark || pod.Metadata.Uid is not { } uid)
        {
            return;
        }
        if (change.Type == WatchEventType.Deleted)
        {
            _known.Remove(uid);
            workers.Deleted(pod);
            return;
        }
        _known[uid] = pod;
        workers.Upsert(pod);
    }

    private void Replace(IReadOnlyList<V1Pod> pods)
    {
        var listed = pods.Where(p => p.Metadata.Uid is not null).ToDictionary(p => p.Metadata.Uid!, StringComparer.Ordinal);
        foreach (var vanished in _known.Where(k => !listed.ContainsKey(k.Key)).ToList())
        {
            _known.Remove(vanished.Key);
            workers.Deleted(vanished.Value);
        }
        foreach (var (uid, pod) in listed)
        {
            _known[uid] = pod;
            workers.Upsert(pod);
        }
    }
}
