using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.V1;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using Api = Containerd.Services.Containers.V1;

namespace PodMigrate.Agent.Memory;

/// <summary>
/// One memory sample of the node and of the running containers of the pods a watcher asks about: the node from the
/// cgroup all its pods are under (<see cref="AgentOptions.NodeCgroup"/>) or, without one, /proc/meminfo; each container
/// from its own cgroup, found through its OCI spec's cgroupsPath (cgroupfs paths; a systemd slice path is skipped).
/// </summary>
internal sealed class MemorySampler(ContainerdConnection containerd, IOptions<AgentOptions> options, TimeProvider time)
{
    private readonly ContainerdContainers _containers = new(containerd);
    private readonly bool _v2 = CgroupMemoryFiles.IsCgroupV2();

    public async Task<MemorySample> SampleAsync(IReadOnlyDictionary<string, string> podLabels, CancellationToken cancellationToken)
    {
        var (hostSome, hostFull) = CgroupMemoryFiles.ReadHostPressure();
        var sample = new MemorySample { TakenAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()), Node = NodeSample(hostSome, hostFull) };
        var all = await _containers.ListAsync(cancellationToken);
        var optedIn = all.Where(c => IsSandbox(c) && podLabels.All(l => c.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
            .Select(c => c.Labels.GetValueOrDefault(KubeletLabels.PodUid))
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        if (optedIn.Count == 0)
        {
            return sample;
        }
        var running = (await new ContainerdTasks(containerd).ListAsync(cancellationToken))
            .Where(t => t.State is TaskState.Running)
            .Select(t => t.ContainerId)
            .ToHashSet(StringComparer.Ordinal);
        foreach (var container in all.Where(c => !IsSandbox(c) && running.Contains(c.Id)))
        {
            var labels = container.Labels;
            if (!labels.TryGetValue(KubeletLabels.PodUid, out var uid) || !optedIn.Contains(uid) || CgroupsPath(container) is not { } cgroup)
            {
                continue;
            }
            if (CgroupMemoryFiles.Read(CgroupMemoryFiles.Directory(cgroup, _v2), _v2, hostSome, hostFull) is not { } figures)
            {
                continue;
            }
            sample.Containers.Add(new ContainerMemory
            {
                PodNamespace = labels.GetValueOrDefault(KubeletLabels.PodNamespace, ""),
                PodName = labels.GetValueOrDefault(KubeletLabels.PodName, ""),
                PodUid = uid,
                ContainerName = labels.GetValueOrDefault(KubeletLabels.ContainerName, container.Id),
                ContainerId = container.Id,
                UsageBytes = figures.UsageBytes,
                WorkingSetBytes = figures.WorkingSetBytes,
                LimitBytes = figures.LimitBytes,
                LimitHits = figures.LimitHits,
                OomKills = figures.OomKills,
            });
        }
        return sample;
    }

    private NodeMemory NodeSample(double hostSome, double hostFull)
    {
        var cgroup = options.Value.NodeCgroup;
        MemoryFigures? figures = null;
        var source = "meminfo";
        if (!string.IsNullOrEmpty(cgroup))
        {
            figures = CgroupMemoryFiles.Read(CgroupMemoryFiles.Directory(cgroup, _v2), _v2, hostSome, hostFull);
            source = $"cgroup-{(_v2 ? "v2" : "v1")}:{cgroup}";
        }
        // A node cgroup that is not there (yet: no pod ran) or has no limit reads as the host.
        if (figures is not { LimitBytes: > 0 })
        {
            figures = CgroupMemoryFiles.ReadHost(hostSome, hostFull);
            source = "meminfo";
        }
        var f = figures.Value;
        return new NodeMemory
        {
            Source = source,
            UsageBytes = f.UsageBytes,
            WorkingSetBytes = f.WorkingSetBytes,
            CapacityBytes = f.LimitBytes,
            LimitHits = f.LimitHits,
            OomKills = f.OomKills,
            PressureSomeAvg10 = f.PressureSome,
            PressureFullAvg10 = f.PressureFull,
        };
    }

    private static bool IsSandbox(Api.Container container)
        => container.Labels.TryGetValue(CriContainerdLabels.Kind, out var kind) && kind == "sandbox";

    /// <summary>The OCI spec's linux.cgroupsPath when it is a cgroupfs path ("/kubepods/…/&lt;id&gt;").</summary>
    internal static string? CgroupsPath(Api.Container container)
    {
        if (container.Spec?.Value is not { IsEmpty: false } spec)
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(spec.Memory);
            return document.RootElement.TryGetProperty("linux", out var linux)
                   && linux.TryGetProperty("cgroupsPath", out var path)
                   && path.GetString() is { } text && text.StartsWith('/') && !text.Split('/').Contains("..")
                ? text
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
