using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Criu;
using PodMigrate.Node.Restore;
using Runc = Containerd.Runc.V1;

namespace PodMigrate.Agent.Restoring;

/// <summary>
/// RESTORE_DIRECT: a bare containerd container restored through the Tasks API, which works with containerd 1.7 and
/// every 2.x including 2.4+, where CRI's restore is gone. The base image (pulled through Transfer if missing), a new
/// snapshot of it with the checkpoint's rootfs diff applied to its upper directory, a container record with the
/// checkpointed spec adapted to this node (<see cref="SpecAdapter"/>), a fresh network namespace, then Tasks.Create
/// with runc's criu_image_path and Tasks.Start (runc restore). Every failure removes what was created here.
/// <see cref="RemoveAsync"/> removes a restored container with everything it was given.
/// </summary>
internal sealed class DirectRestore(
    IOptions<AgentOptions> options,
    ContainerdConnection containerd,
    CriConnection cri,
    ILogger<DirectRestore> logger)
{
    public const string RestoredFromLabel = "podmigrate.io/restored-from";
    public const string NetworkNamespaceLabel = "podmigrate.io/netns";
    private static readonly TimeSpan LeaseExpiry = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);

    private readonly ContainerdContainers _containers = new(containerd);
    private readonly ContainerdImages _images = new(containerd);
    private readonly ContainerdTasks _tasks = new(containerd);
    private readonly ContainerdLeases _leases = new(containerd);
    private readonly RestoredContainers _restored = new(containerd, options.Value.StateDirectory);

    public async Task<RestoredTarget> RunAsync(RestoreContext context, string containerId, CancellationToken cancellationToken)
    {
        if (await ExistsAsync(containerId, cancellationToken))
        {
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"container {containerId} already exists on this node");
        }
        var specJson = await File.ReadAllBytesAsync(context.RequireFile(CheckpointLayout.SpecDumpFile), cancellationToken);
        var config = await context.ReadConfigDumpAsync(cancellationToken);
        var created = false;
        try
        {
            var mounts = await context.PhaseAsync(Phase.Import, "preparing the base image, root file system and container", async () =>
            {
                var image = await EnsureBaseImageAsync(context, config, cancellationToken);
                created = true;
                var spec = await AdaptSpecAsync(context, containerId, specJson, cancellationToken);
                var mounts = await CreateContainerAsync(context, containerId, image, spec, cancellationToken);
                var diff = context.PathOf(CheckpointLayout.RootFsDiffTar);
                if (File.Exists(diff))
                {
                    var upper = ContainerdSnapshots.UpperDir(mounts)
                        ?? throw PodMigrateException.FailedPrecondition($"snapshot of {containerId} is not an overlay mount; its rootfs diff cannot be applied");
                    await RootfsDiffApplier.ApplyAsync(diff, upper, cancellationToken);
                }
                return mounts;
            });
            var pid = await context.PhaseAsync(Phase.Restore, $"restoring {containerId} with CRIU (runc restore)", () => RestoreTaskAsync(context, containerId, mounts, cancellationToken));
            return new RestoredTarget(containerId, Pid: pid);
        }
        catch when (created)
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            try
            {
                await RemoveAsync(containerId, cleanup.Token);
            }
            catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException or OperationCanceledException)
            {
                AgentLog.RestoreCleanupFailed(logger, e, context.Id.Value, containerId);
            }
            throw;
        }
    }

    /// <summary>
    /// Removes a container restored by <see cref="RunAsync"/>: its task, record and snapshot, the network namespace
    /// and the files made for it. Whatever is already gone is skipped; false when there was nothing at all.
    /// </summary>
    public Task<bool> RemoveAsync(string containerId, CancellationToken cancellationToken)
        => ContainerIds.IsValid(containerId)
            ? _restored.RemoveAsync(containerId, cancellationToken)
            : throw PodMigrateException.InvalidArgument($"'{containerId}' is not a valid container id");

    /// <summary>Files made for the container on this node (the sandbox files the source had, the restore's work dir).</summary>
    private string ContainerDirectory(string containerId) => _restored.DirectoryOf(containerId);

    private static string SnapshotKey(string containerId) => RestoredContainers.SnapshotKey(containerId);

    public static string NetworkNamespaceName(string containerId) => RestoredContainers.NetworkNamespaceName(containerId);

    private async Task<bool> ExistsAsync(string containerId, CancellationToken cancellationToken)
    {
        try
        {
            await _containers.GetAsync(containerId, cancellationToken);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// The checkpoint's base image on this node: by config.dump's reference (a repo digest when the source pulled it),
    /// its name, or the manifest's image; pulled through containerd's Transfer service when none is present.
    /// </summary>
    private async Task<ResolvedImage> EnsureBaseImageAsync(RestoreContext context, ContainerConfigDump config, CancellationToken cancellationToken)
    {
        var candidates = new[] { config.RootfsImageRef, config.RootfsImageName, config.RootfsImage, context.Stored.Manifest.ImageReference }
            .Where(c => !string.IsNullOrEmpty(c))
            .Distinct(StringComparer.Ordinal)
            .Cast<string>()
            .ToList();
        foreach (var candidate in candidates)
        {
            try
            {
                return await _images.ResolveAsync(candidate, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                // not on this node under that name
            }
        }
        var pullable = candidates.FirstOrDefault(c => c.Contains('/', StringComparison.Ordinal) && !c.StartsWith("sha256:", StringComparison.Ordinal))
            ?? throw PodMigrateException.FailedPrecondition(
                $"checkpoint {context.Id}: its base image ({string.Join(", ", candidates)}) is not on this node and none of its names can be pulled");
        var registry = ImageReference.Parse(pullable).Registry;
        await PullBaseImageAsync(pullable, registry, cancellationToken);
        AgentLog.BaseImagePulled(logger, context.Id.Value, pullable);
        return await _images.ResolveAsync(pullable, cancellationToken);
    }

    /// <summary>
    /// Through containerd's Transfer service with the node's registry hosts directory; containerd 1.x's Transfer
    /// service ignores the resolver's hosts directory and scheme (https only), so there the node's CRI image service
    /// pulls, which reads the same hosts directory (CRI's <c>config_path</c>) and stores into the same namespace.
    /// </summary>
    private async Task PullBaseImageAsync(string reference, string registry, CancellationToken cancellationToken)
    {
        var version = await containerd.VersionAsync(cancellationToken);
        if (MajorVersion(version.Version) == 1)
        {
            await cri.Images.PullImageAsync(reference, sandboxConfig: null, cancellationToken);
            return;
        }
        var pull = new ImagePullOptions(PlainHttp: RegistryClient.EndpointFor(registry).Scheme == "http", HostsDirectory: options.Value.RegistryHostsDirectory);
        await _images.PullAsync(reference, pull, cancellationToken);
    }

    /// <summary>The major version of a containerd version string such as <c>v2.1.9</c> or <c>1.7.24~ds1</c>; 0 when unreadable.</summary>
    internal static int MajorVersion(string version)
    {
        var text = version.TrimStart('v');
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        return int.TryParse(dot < 0 ? text : text[..dot], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var major) ? major : 0;
    }

    private async Task<OciSpec> AdaptSpecAsync(RestoreContext context, string containerId, byte[] specJson, CancellationToken cancellationToken)
    {
        var subject = $"spec.dump of checkpoint {context.Id}";
        var directory = ContainerDirectory(containerId);
        Directory.CreateDirectory(directory);
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var destination in SpecAdapter.SandboxBindDestinations(specJson, subject))
        {
            sources[destination] = await CreateSandboxFileAsync(directory, destination, SpecAdapter.Hostname(specJson, subject) ?? containerId, cancellationToken);
        }
        string? netns = null;
        if (SpecAdapter.HasNetworkNamespace(specJson, subject))
        {
            netns = await NetworkNamespaces.CreateAsync(NetworkNamespaceName(containerId), cancellationToken);
        }
        return SpecAdapter.Adapt(specJson, new SpecAdaptation(RestoredContainers.CgroupPath(containerId), netns, sources), subject);
    }

    /// <summary>A node-local stand-in for one of the source sandbox's files: same kind (file or directory), sensible content.</summary>
    private static async Task<string> CreateSandboxFileAsync(string directory, string destination, string hostname, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, destination.TrimStart('/').Replace('/', '_'));
        switch (destination)
        {
            case "/dev/shm":
                Directory.CreateDirectory(path);
                File.SetUnixFileMode(path, (UnixFileMode)0b1_111_111_111);
                break;
            case "/etc/hosts":
                await File.WriteAllTextAsync(path, $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n", cancellationToken);
                break;
            case "/etc/hostname":
                await File.WriteAllTextAsync(path, hostname + "\n", cancellationToken);
                break;
            case "/etc/resolv.conf":
                await File.WriteAllTextAsync(path, File.Exists("/etc/resolv.conf") ? await File.ReadAllTextAsync("/etc/resolv.conf", cancellationToken) : "", cancellationToken);
                break;
            default:
                await File.WriteAllTextAsync(path, "", cancellationToken);
                break;
        }
        return path;
    }

    /// <summary>Snapshot and container record, made under a lease so that the snapshot is never unreferenced.</summary>
    private async Task<IReadOnlyList<global::Containerd.Types.Mount>> CreateContainerAsync(
        RestoreContext context, string containerId, ResolvedImage image, OciSpec spec, CancellationToken cancellationToken)
    {
        await using var lease = await _leases.CreateAsync($"podmigrate-restore-{containerId}", LeaseExpiry, cancellationToken);
        var leased = _leases.Under(lease);
        var mounts = await new ContainerdSnapshots(leased).PrepareAsync(SnapshotKey(containerId), image.ChainId, cancellationToken);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [RestoredFromLabel] = context.Id.Value,
            [NetworkNamespaceLabel] = NetworkNamespaceName(containerId),
        };
        await new ContainerdContainers(leased).CreateAsync(new ContainerdContainerSpec(containerId, image.Name, spec, SnapshotKey(containerId), Labels: labels), cancellationToken);
        return mounts;
    }

    private async Task<uint> RestoreTaskAsync(RestoreContext context, string containerId, IReadOnlyList<global::Containerd.Types.Mount> mounts, CancellationToken cancellationToken)
    {
        var workDirectory = Path.Combine(context.Staging, "criu-work");
        Directory.CreateDirectory(workDirectory);
        var io = TaskIo.ToFile(Path.Combine(ContainerDirectory(containerId), "container.log"));
        var restore = new TaskRestoreOptions(context.CriuImageDirectory, workDirectory, await NodeRuncOptionsAsync(cancellationToken), options.Value.OperationTimeout);
        try
        {
            return await _tasks.RestoreAsync(containerId, mounts, io, restore, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.Internal)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var excerpt = await CriuLog.ErrorExcerptAsync(Path.Combine(workDirectory, CheckpointLayout.RestoreLogFile), timeout.Token);
            throw new PodMigrateException(ErrorKind.Internal, $"CRIU could not restore checkpoint {context.Id} as container {containerId}: {e.Message}", e, excerpt);
        }
    }

    /// <summary>
    /// The runc options this node's CRI runs containers with (binary, state root, cgroup driver), taken from a CRI
    /// sandbox record: task options replace a container's runtime options, and a restored container belongs with the
    /// node's others. Null (runc's defaults) when CRI runs nothing here.
    /// </summary>
    private async Task<Runc.Options?> NodeRuncOptionsAsync(CancellationToken cancellationToken)
    {
        var sandboxes = await _containers.ListAsync(cancellationToken, $"labels.\"{CriContainerdLabels.Kind}\"==sandbox");
        var options = sandboxes.Select(c => c.Runtime?.Options).FirstOrDefault(o => o is not null && o.TypeUrl.EndsWith(Runc.Options.Descriptor.FullName, StringComparison.Ordinal));
        return options is null ? null : Runc.Options.Parser.ParseFrom(options.Value);
    }
}
