using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;
using PodMigrate.TestKit.Containerd;
using Mount = Containerd.Types.Mount;

namespace PodMigrate.Integration.Tests.Containerd;

/// <summary>
/// One test's containerd namespace on one node, with the typed clients, a way to create containers from an image,
/// and a cleanup that leaves nothing: tasks killed and deleted, containers deleted, snapshots removed, cgroups gone.
/// </summary>
internal sealed class TestNamespace : IAsyncDisposable
{
    private readonly List<string> _containers = [];

    private TestNamespace(StandaloneContainerd node, string name)
    {
        Node = node;
        Name = name;
        Connection = ContainerdConnection.Open(node.SocketPath, name);
        Images = new ContainerdImages(Connection);
        Snapshots = new ContainerdSnapshots(Connection);
        Containers = new ContainerdContainers(Connection);
        Tasks = new ContainerdTasks(Connection);
        Leases = new ContainerdLeases(Connection);
    }

    public StandaloneContainerd Node { get; }

    public string Name { get; }

    public ContainerdConnection Connection { get; }

    public ContainerdImages Images { get; }

    public ContainerdSnapshots Snapshots { get; }

    public ContainerdContainers Containers { get; }

    public ContainerdTasks Tasks { get; }

    public ContainerdLeases Leases { get; }

    public static TestNamespace Create(StandaloneContainerd node, string prefix)
        => new(node, $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}");

    /// <summary>
    /// Prepares a snapshot on the image's layers and creates the container record, both under one lease so the
    /// garbage collector cannot take the snapshot in between; returns the rootfs mounts for the task.
    /// </summary>
    public async Task<IReadOnlyList<Mount>> CreateContainerAsync(string id, ResolvedImage image, Func<OciSpecBuilder, OciSpecBuilder> configure, CancellationToken cancellationToken)
    {
        _containers.Add(id);
        var snapshotKey = $"{id}-rootfs";
        await using var lease = await Leases.CreateAsync($"create-{id}", TimeSpan.FromMinutes(5), cancellationToken);
        var leased = Leases.Under(lease);
        var mounts = await new ContainerdSnapshots(leased).PrepareAsync(snapshotKey, image.ChainId, cancellationToken);
        var spec = configure(new OciSpecBuilder(id, image.Config)).Build(Name);
        await new ContainerdContainers(leased).CreateAsync(new ContainerdContainerSpec(id, image.Name, spec, snapshotKey), cancellationToken);
        return mounts;
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var errors = new List<Exception>();
        foreach (var id in _containers)
        {
            await Try(() => Tasks.KillAndDeleteAsync(id, timeout.Token));
            await Try(() => Containers.DeleteAsync(id, timeout.Token));
            await Try(() => Snapshots.RemoveAsync($"{id}-rootfs", timeout.Token));
        }
        RemoveCgroups();
        Connection.Dispose();
        if (errors.Count > 0)
        {
            throw new AggregateException($"cleaning up namespace {Name} on {Node.SocketPath}", errors);
        }

        async Task Try(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                // already gone
            }
            catch (PodMigrateException e)
            {
                errors.Add(e);
            }
        }
    }

    /// <summary>runc removes a container's leaf cgroup (cgroupsPath /&lt;namespace&gt;/&lt;id&gt;) but not its parent.</summary>
    private void RemoveCgroups()
    {
        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
        {
            var parent = Path.Combine(controller, Name);
            if (!Directory.Exists(parent))
            {
                continue;
            }
            foreach (var leaf in Directory.EnumerateDirectories(parent))
            {
                Directory.Delete(leaf);
            }
            Directory.Delete(parent);
        }
    }
}
