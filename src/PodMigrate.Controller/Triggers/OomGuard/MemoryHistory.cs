using PodMigrate.Agent.V1;

namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>
/// The recent memory readings the agents streamed: per node (working set, capacity) and per opted-in container, each
/// trimmed to twice the fitting window. A container that restarted (a new id) starts a new series. Thread-safe: the
/// watchers add, the guard's tick reads a copy.
/// </summary>
internal sealed class MemoryHistory(TimeSpan keep)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, NodeSeries> _nodes = new(StringComparer.Ordinal);

    internal sealed record ContainerSeries(string Namespace, string Pod, string Container, string ContainerId, long LimitBytes, List<MemoryPoint> Points);

    internal sealed record NodeSeries(string Node, DateTimeOffset ReceivedAt, long Capacity, string Source, List<MemoryPoint> Points, Dictionary<string, ContainerSeries> Containers);

    public void Add(string node, MemorySample sample, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var at = sample.TakenAt?.ToDateTimeOffset() ?? receivedAt;
        lock (_lock)
        {
            var previous = _nodes.GetValueOrDefault(node);
            if (previous is not null && (previous.Source != (sample.Node?.Source ?? "") || previous.Capacity != (sample.Node?.CapacityBytes ?? 0)))
            {
                // Another source (the node cgroup appeared) or capacity: the old readings do not continue into the new.
                previous = null;
            }
            var points = previous?.Points ?? [];
            points.Add(new MemoryPoint(at, sample.Node?.WorkingSetBytes ?? 0));
            Trim(points, at);
            var containers = new Dictionary<string, ContainerSeries>(StringComparer.Ordinal);
            foreach (var c in sample.Containers)
            {
                var key = $"{c.PodNamespace}/{c.PodName}";
                var series = previous?.Containers.GetValueOrDefault(key) is { } old && old.ContainerId == c.ContainerId ? old.Points : [];
                series.Add(new MemoryPoint(at, c.WorkingSetBytes));
                Trim(series, at);
                containers[key] = new ContainerSeries(c.PodNamespace, c.PodName, c.ContainerName, c.ContainerId, c.LimitBytes, series);
            }
            _nodes[node] = new NodeSeries(node, receivedAt, sample.Node?.CapacityBytes ?? 0, sample.Node?.Source ?? "", points, containers);
        }
    }

    public void Forget(string node)
    {
        lock (_lock)
        {
            _nodes.Remove(node);
        }
    }

    /// <summary>A copy of every node's series whose latest sample arrived after <paramref name="freshSince"/>.</summary>
    public IReadOnlyList<NodeSeries> Snapshot(DateTimeOffset freshSince)
    {
        lock (_lock)
        {
            return [.. _nodes.Values.Where(n => n.ReceivedAt >= freshSince).Select(n => n with
            {
                Points = [.. n.Points],
                Containers = n.Containers.ToDictionary(c => c.Key, c => c.Value with { Points = [.. c.Value.Points] }, StringComparer.Ordinal),
            })];
        }
    }

    private void Trim(List<MemoryPoint> points, DateTimeOffset now) => points.RemoveAll(p => now - p.At > keep);
}
