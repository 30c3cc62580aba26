using System.Globalization;
using PodMigrate.Core.Errors;

namespace PodMigrate.NodeEmulator.Nodes;

/// <summary>
/// The cgroup every pod of a node with an enforced memory capacity runs under (the CRI sandbox's cgroup_parent lies
/// below it): created and capped at the node's size, so that the node's pods together cannot exceed it and the kernel's
/// OOM killer acts as on a full node. cgroup v1 (memory.limit_in_bytes in the memory hierarchy) or v2 (memory.max, the
/// memory controller enabled down the path). <see cref="Plan"/> decides what to write; <see cref="Apply"/> writes it.
/// </summary>
internal static class NodeMemoryCgroup
{
    public const string CgroupMount = "/sys/fs/cgroup";

    /// <summary>One step: a directory to create, or a file to write.</summary>
    internal sealed record Step(string Path, string? Content);

    public static bool IsCgroupV2(string mount = CgroupMount) => File.Exists(Path.Combine(mount, "cgroup.controllers"));

    /// <summary>What capping <paramref name="cgroup"/> ("/podmigrate/node-a") at <paramref name="bytes"/> takes. Pure.</summary>
    public static IReadOnlyList<Step> Plan(string cgroup, long bytes, bool cgroupV2, string mount = CgroupMount)
    {
        ArgumentException.ThrowIfNullOrEmpty(cgroup);
        var parts = cgroup.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Any(p => p is "." or ".."))
        {
            throw PodMigrateException.InvalidArgument($"'{cgroup}' is not a cgroup path below the root");
        }
        var size = bytes.ToString(CultureInfo.InvariantCulture);
        var steps = new List<Step>();
        if (!cgroupV2)
        {
            var dir = Path.Combine([mount, "memory", .. parts]);
            steps.Add(new Step(dir, null));
            steps.Add(new Step(Path.Combine(dir, "memory.limit_in_bytes"), size));
            return steps;
        }
        // v2: a controller is usable in a child only when every ancestor enables it for its children.
        var current = mount;
        foreach (var part in parts)
        {
            steps.Add(new Step(Path.Combine(current, "cgroup.subtree_control"), "+memory"));
            current = Path.Combine(current, part);
            steps.Add(new Step(current, null));
        }
        steps.Add(new Step(Path.Combine(current, "cgroup.subtree_control"), "+memory"));
        steps.Add(new Step(Path.Combine(current, "memory.max"), size));
        return steps;
    }

    /// <summary>Creates and caps the node's cgroup; a cgroup that exists is capped again (the node may have been resized).</summary>
    public static void Apply(string cgroup, long bytes)
    {
        foreach (var step in Plan(cgroup, bytes, IsCgroupV2()))
        {
            try
            {
                if (step.Content is null)
                {
                    Directory.CreateDirectory(step.Path);
                }
                else
                {
                    File.WriteAllText(step.Path, step.Content);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw PodMigrateException.FailedPrecondition(
                    $"cannot cap the node's memory at {bytes} bytes in cgroup {cgroup} ({step.Path}): {e.Message} (root and a memory cgroup controller are needed; usage above the new cap also refuses it)");
            }
        }
    }
}
