using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using Api = Containerd.Services.Containers.V1;

namespace PodMigrate.Agent.Containers;

/// <summary>Finds the containerd container a request names: by pod and container name (CRI labels), or by id.</summary>
internal sealed class ContainerResolver(ContainerdConnection containerd)
{
    private readonly ContainerdContainers _containers = new(containerd);

    public async Task<SourceContainer> ResolveAsync(ContainerSelector? selector, CancellationToken cancellationToken)
    {
        switch (selector?.TargetCase)
        {
            case ContainerSelector.TargetOneofCase.ContainerId:
                var id = selector.ContainerId;
                if (!ContainerIds.IsValid(id))
                {
                    throw PodMigrateException.InvalidArgument($"'{id}' is not a valid container id");
                }
                return ToSource(await _containers.GetAsync(id, cancellationToken));

            case ContainerSelector.TargetOneofCase.Pod:
                return await ResolvePodContainerAsync(selector.Pod, cancellationToken);

            default:
                throw PodMigrateException.InvalidArgument("name the container: a pod (namespace, pod, container) or a container id");
        }
    }

    public async Task<IReadOnlyList<SourceContainer>> ListAsync(string podNamespace, string podName, CancellationToken cancellationToken)
    {
        var filters = new List<string>();
        if (!string.IsNullOrEmpty(podNamespace))
        {
            filters.Add(LabelFilter(KubeletLabels.PodNamespace, podNamespace));
        }
        if (!string.IsNullOrEmpty(podName))
        {
            filters.Add(LabelFilter(KubeletLabels.PodName, podName));
        }
        var all = await _containers.ListAsync(cancellationToken, filters.Count == 0 ? [] : [string.Join(",", filters)]);
        return [.. all.Where(c => !IsSandbox(c)).Select(ToSource)];
    }

    private async Task<SourceContainer> ResolvePodContainerAsync(ContainerSelector.Types.PodContainer pod, CancellationToken cancellationToken)
    {
        if (!KubeNames.IsValidName(pod.Namespace) || !KubeNames.IsValidName(pod.Pod))
        {
            throw PodMigrateException.InvalidArgument($"'{pod.Namespace}/{pod.Pod}' is not a valid pod namespace/name");
        }
        if (pod.Container.Length > 0 && !KubeNames.IsValidName(pod.Container))
        {
            throw PodMigrateException.InvalidArgument($"'{pod.Container}' is not a valid container name");
        }
        var candidates = (await ListAsync(pod.Namespace, pod.Pod, cancellationToken))
            .Where(c => pod.Container.Length == 0 || c.ContainerName == pod.Container)
            .ToList();
        var running = await RunningOnlyAsync(candidates, cancellationToken);
        return running.Count switch
        {
            1 => running[0],
            0 => throw PodMigrateException.NotFound(pod.Container.Length == 0
                ? $"pod {pod.Namespace}/{pod.Pod} has no running container on this node"
                : $"container {pod.Container} of pod {pod.Namespace}/{pod.Pod} is not running on this node"),
            _ => throw PodMigrateException.InvalidArgument(
                $"pod {pod.Namespace}/{pod.Pod} has several running containers ({string.Join(", ", running.Select(c => c.ContainerName))}): name one"),
        };
    }

    /// <summary>A restarted container leaves exited records behind; only those with a live task count.</summary>
    private async Task<List<SourceContainer>> RunningOnlyAsync(List<SourceContainer> candidates, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0)
        {
            return candidates;
        }
        var tasks = await new ContainerdTasks(containerd).ListAsync(cancellationToken);
        var live = tasks.Where(t => t.State is TaskState.Running or TaskState.Paused)
            .Select(t => t.ContainerId)
            .ToHashSet(StringComparer.Ordinal);
        return [.. candidates.Where(c => live.Contains(c.Id))];
    }

    private static bool IsSandbox(Api.Container container)
        => container.Labels.TryGetValue(CriContainerdLabels.Kind, out var kind) && kind == "sandbox";

    private SourceContainer ToSource(Api.Container container) => new(
        container.Id,
        containerd.Namespace,
        container.Image,
        container.Runtime?.Name ?? ContainerdContainers.RuncV2,
        container.Snapshotter,
        container.SnapshotKey,
        container.CreatedAt?.ToDateTimeOffset() ?? DateTimeOffset.MinValue,
        container.Spec?.Value ?? Google.Protobuf.ByteString.Empty,
        container.Labels.ToDictionary(StringComparer.Ordinal));

    private static string LabelFilter(string key, string value) => $"labels.\"{key}\"=={value}";
}

/// <summary>Validation of names that end up in filters, paths and messages.</summary>
internal static class KubeNames
{
    /// <summary>A DNS-1123 label or subdomain (pod, namespace and container names).</summary>
    public static bool IsValidName(string value)
        => value.Length is > 0 and <= 253
           && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.')
           && char.IsAsciiLetterOrDigit(value[0]) && char.IsAsciiLetterOrDigit(value[^1]);
}

internal static class ContainerIds
{
    /// <summary>containerd ids: letters, digits, '.', '_', '-', at most 76 characters, starting alphanumeric.</summary>
    public static bool IsValid(string value)
        => value.Length is > 0 and <= 76
           && char.IsAsciiLetterOrDigit(value[0])
           && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}
