using System.Security.Cryptography;
using System.Text;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Node.Restore;

/// <summary>
/// The one owner of what a direct restore gives a bare container on a node — its snapshot key, its network namespace,
/// its files under <c>&lt;state directory&gt;/restored/&lt;id&gt;</c> and its cgroup under <see cref="CgroupParent"/> —
/// and of removing all of it again. The agent restores with it; the benchmark removes its restored copies with it.
/// </summary>
public sealed class RestoredContainers(ContainerdConnection containerd, string stateDirectory)
{
    public const string CgroupParent = "/podmigrate";
    private const string CgroupRoot = "/sys/fs/cgroup";

    private readonly ContainerdContainers _containers = new(containerd);
    private readonly ContainerdSnapshots _snapshots = new(containerd);
    private readonly ContainerdTasks _tasks = new(containerd);

    public static string SnapshotKey(string containerId) => $"podmigrate-restore-{containerId}";

    /// <summary>A name of at most 15 characters derived from the id (container ids may be 76 long).</summary>
    public static string NetworkNamespaceName(string containerId)
        => "pm-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(containerId)))[..12];

    public static string CgroupPath(string containerId) => $"{CgroupParent}/{containerId}";

    /// <summary>Files made for the container on this node (the sandbox files the source had, the restore's log).</summary>
    public string DirectoryOf(string containerId) => Path.Combine(stateDirectory, "restored", containerId);

    /// <summary>
    /// Removes a restored container: its task, record and snapshot, the network namespace and the files made for it.
    /// Whatever is already gone is skipped; false when there was nothing at all.
    /// </summary>
    public async Task<bool> RemoveAsync(string containerId, CancellationToken cancellationToken)
    {
        var found = await IgnoreNotFoundAsync(() => _tasks.KillAndDeleteAsync(containerId, cancellationToken));
        found |= await IgnoreNotFoundAsync(async () =>
        {
            await _containers.DeleteAsync(containerId, cancellationToken);
            return true;
        });
        found |= await IgnoreNotFoundAsync(async () =>
        {
            await _snapshots.RemoveAsync(SnapshotKey(containerId), cancellationToken);
            return true;
        });
        found |= await NetworkNamespaces.DeleteAsync(NetworkNamespaceName(containerId), cancellationToken);
        var directory = DirectoryOf(containerId);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
            found = true;
        }
        foreach (var controller in Directory.Exists(CgroupRoot) ? Directory.EnumerateDirectories(CgroupRoot) : [])
        {
            // runc removes the container's cgroup but not an empty parent it created.
            var parent = Path.Combine(controller, CgroupParent.TrimStart('/'));
            var cgroup = Path.Combine(parent, containerId);
            if (Directory.Exists(cgroup))
            {
                Directory.Delete(cgroup, recursive: false);
            }
            TryRemoveEmptyCgroup(parent);
        }
        return found;
    }

    /// <summary>rmdir of a cgroup that still has children (other restored containers) fails; that is expected.</summary>
    private static void TryRemoveEmptyCgroup(string path)
    {
        try
        {
            if (Directory.Exists(path) && !Directory.EnumerateDirectories(path).Any())
            {
                Directory.Delete(path, recursive: false);
            }
        }
        catch (IOException)
        {
            // a container was created in it meanwhile
        }
    }

    private static async Task<bool> IgnoreNotFoundAsync(Func<Task<bool>> step)
    {
        try
        {
            return await step();
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
    }
}
