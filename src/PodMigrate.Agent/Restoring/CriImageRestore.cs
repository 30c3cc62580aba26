using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Core.Store;
using PodMigrate.Kube.Models;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Restore;
using Runtime.V1;
using KubeContainer = PodMigrate.Kube.Models.Container;

namespace PodMigrate.Agent.Restoring;

/// <summary>
/// RESTORE_CRI_IMAGE: the runtime restores the container itself when a kubelet creates it with a checkpoint as its
/// image (containerd 2.1–2.3, CRI-O). The checkpoint is handed over as a plain Kubernetes checkpoint tar on this
/// node, a form both runtimes take as the image of CreateContainer (containerd: "if os.Stat(image) succeeds, it is
/// an archive"). Chosen over a checkpoint OCI image because nothing has to be recompressed, pushed and pulled: the
/// blob on the share is decompressed once straight into that tar (verified in the same pass, never unpacked here),
/// and containerd unpacks it once. Then the pod runs the way
/// <see cref="KubeletPodRunner"/> runs pods: RunPodSandbox with kubelet's config, CreateContainer, StartContainer.
/// Every failure removes the sandbox (and with it the container), its log directory and pod cgroups, and the
/// read-only checkpointNNN mount containerd 2.1 leaks when its restore fails.
/// </summary>
internal sealed class CriImageRestore(
    IOptions<AgentOptions> options,
    ICheckpointStore store,
    CriConnection cri,
    ContainerdConnection containerd,
    TimeProvider time,
    ILoggerFactory loggers)
{
    private const string CheckpointTarName = "checkpoint.tar";
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);
    private static readonly IReadOnlySet<string> MetadataFiles = new HashSet<string>(StringComparer.Ordinal)
    {
        CheckpointLayout.ConfigDumpFile, CheckpointLayout.SpecDumpFile, CheckpointLayout.StatusDumpFile,
    };

    private readonly ILogger _logger = loggers.CreateLogger<CriImageRestore>();
    private readonly KubeletPodRunner _runner = new(cri, loggers.CreateLogger<KubeletPodRunner>(), time);

    public async Task<RestoredTarget> RunAsync(RestoreContext context, RestoreRequest request, CancellationToken cancellationToken)
    {
        var image = TarPath(context, request.ImageOnly);
        var config = await context.PhaseAsync(Phase.Fetch, $"fetching and verifying checkpoint {context.Id} into a checkpoint tar for CRI",
            () => FetchCheckpointTarAsync(context, image, cancellationToken));
        if (request.ImageOnly)
        {
            return new RestoredTarget("", CheckpointImage: image);
        }

        var target = request.Pod;
        var pod = PodFor(target, config, context, image);
        return await context.PhaseAsync(Phase.Restore, $"restoring pod {target.Namespace}/{target.Name} through CRI", () => RunPodAsync(pod, context, cancellationToken));
    }

    /// <summary>Where image_only leaves the tar: outside staging, because the caller creates the container later.</summary>
    private string TarPath(RestoreContext context, bool imageOnly)
        => imageOnly
            ? Path.Combine(options.Value.StateDirectory, "images", $"{context.Id}.tar")
            : Path.Combine(context.Staging, CheckpointTarName);

    /// <summary>
    /// One pass from the share to the tar the runtime gets: decompressed once, every file's and the blob's sha256
    /// verified on the way (a tar that fails is deleted: DataLoss, nothing created); only the metadata files are held
    /// in memory, and written to staging for the steps after. containerd needs all three to restore: it reads labels
    /// and annotations from status.dump.
    /// </summary>
    private async Task<ContainerConfigDump> FetchCheckpointTarAsync(RestoreContext context, string tarPath, CancellationToken cancellationToken)
    {
        ContainerConfigDump? config = null;
        var options = new CheckpointTarCopyOptions
        {
            Captured = MetadataFiles,
            Rewrite = async (name, content, ct) =>
            {
                if (name != CheckpointLayout.ConfigDumpFile)
                {
                    return content;
                }
                var original = ArchiveJson.DeserializeConfigDump(content, $"{CheckpointLayout.ConfigDumpFile} of checkpoint {context.Id}");
                config = await EnsurePullableBaseImageAsync(context, original, ct);
                return ReferenceEquals(config, original) ? content : ArchiveJson.SerializeConfigDump(config);
            },
        };
        var (_, captured) = await store.CopyToCheckpointTarAsync(context.Id, tarPath, options, cancellationToken);
        try
        {
            Directory.CreateDirectory(context.ArchiveDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (var (name, content) in captured)
            {
                await File.WriteAllBytesAsync(context.PathOf(name), content, cancellationToken);
            }
            context.RequireFile(CheckpointLayout.SpecDumpFile);
            context.RequireFile(CheckpointLayout.StatusDumpFile);
            return config ?? throw PodMigrateException.FailedPrecondition($"checkpoint {context.Id} has no {CheckpointLayout.ConfigDumpFile}; it cannot be restored this way");
        }
        catch
        {
            File.Delete(tarPath);
            throw;
        }
    }

    /// <summary>
    /// containerd 2.1 pulls config.dump's rootfsImageRef during the restore even when the image is present, so it must
    /// be a repo digest (registry/name@sha256:…). A checkpoint of a container whose image was imported, not pulled,
    /// has the image id there instead: resolve the image's name in its registry and pin it to the digest found.
    /// </summary>
    private async Task<ContainerConfigDump> EnsurePullableBaseImageAsync(RestoreContext context, ContainerConfigDump config, CancellationToken cancellationToken)
    {
        if (config.RootfsImageRef is { } imageRef && IsRepoDigest(imageRef))
        {
            return config;
        }
        var name = new[] { config.RootfsImageName, config.RootfsImage, context.Stored.Manifest.ImageReference }
            .FirstOrDefault(n => !string.IsNullOrEmpty(n) && !n.StartsWith("sha256:", StringComparison.Ordinal))
            ?? throw PodMigrateException.FailedPrecondition(
                $"checkpoint {context.Id}: config.dump names no pullable base image (rootfsImageRef '{config.RootfsImageRef}'), which containerd's CRI restore pulls");
        var reference = ImageReference.Parse(name);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var manifest = await new RegistryClient(http).GetManifestAsync(reference, cancellationToken);
        var pinned = reference.PinnedTo(manifest.Digest).ToString();
        AgentLog.BaseImagePinned(_logger, context.Id.Value, name, pinned);
        return config with { RootfsImageRef = pinned };
    }

    private static bool IsRepoDigest(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && reference[..at].Contains('/', StringComparison.Ordinal);
    }

    /// <summary>The pod a kubelet would run for this target: the checkpointed container, its image the checkpoint.</summary>
    private static Pod PodFor(PodTarget target, ContainerConfigDump config, RestoreContext context, string image) => new()
    {
        Metadata = new ObjectMeta
        {
            Namespace = target.Namespace,
            Name = target.Name,
            Uid = target.Uid.Length > 0 ? target.Uid : Guid.NewGuid().ToString(),
            Labels = target.Labels.Count > 0 ? target.Labels.ToDictionary() : null,
            Annotations = target.Annotations.Count > 0 ? target.Annotations.ToDictionary() : null,
        },
        Spec = new PodSpec
        {
            Containers =
            [
                new KubeContainer
                {
                    Name = target.Container.Length > 0 ? target.Container : ContainerNameOf(config, context),
                    Image = image,
                    ImagePullPolicy = "Never",
                },
            ],
        },
    };

    private static string ContainerNameOf(ContainerConfigDump config, RestoreContext context)
    {
        var name = context.Stored.Manifest.Container?.Name ?? config.Name;
        return Containers.KubeNames.IsValidName(name)
            ? name
            : throw PodMigrateException.InvalidArgument($"checkpoint {context.Id} names its container '{name}', which is no Kubernetes name: give the target's container name");
    }

    private async Task<RestoredTarget> RunPodAsync(Pod pod, RestoreContext context, CancellationToken cancellationToken)
    {
        var ns = pod.Metadata.Namespace!;
        var name = pod.Metadata.Name!;
        if (await _runner.GetAsync(ns, name, cancellationToken) is { State: "Ready" })
        {
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"pod {ns}/{name} is already running on this node");
        }
        var sandboxConfig = KubeletPodConfig.BuildSandboxConfig(pod, attempt: 0, configSource: "api", time.GetUtcNow());
        var containerConfig = KubeletPodConfig.BuildContainerConfig(pod, pod.Spec.Containers[0], pod.Spec.Containers[0].Image!, restartCount: 0);
        var mountsBefore = LeakedMounts.Snapshot();

        Directory.CreateDirectory(sandboxConfig.LogDirectory);
        string? sandboxId = null;
        try
        {
            sandboxId = await cri.Runtime.RunPodSandboxAsync(sandboxConfig, runtimeHandler: null, cancellationToken);
            var containerId = await cri.Runtime.CreateContainerAsync(sandboxId, containerConfig, sandboxConfig, cancellationToken);
            try
            {
                await cri.Runtime.StartContainerAsync(containerId, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.Internal)
            {
                throw new PodMigrateException(ErrorKind.Internal,
                    $"CRIU could not restore checkpoint {context.Id} as {ns}/{name}: {e.Message}", e, await RestoreLogExcerptAsync(e.Message));
            }
            var pid = (await new ContainerdTasks(containerd).GetAsync(containerId, cancellationToken)).Pid;
            var status = await cri.Runtime.PodSandboxStatusAsync(sandboxId, cancellationToken);
            return new RestoredTarget(containerId, sandboxId, pid, status.Network?.Ip ?? "", pod.Spec.Containers[0].Image!);
        }
        catch
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await RemoveHalfRestoredAsync(sandboxId, sandboxConfig.LogDirectory, pod.Metadata.Uid!, mountsBefore, context, cleanup.Token);
            throw;
        }
    }

    /// <summary>
    /// runc reports a failed CRIU restore as "criu failed: … log file: PATH"; the log is read while the container,
    /// whose directory holds it, still exists.
    /// </summary>
    private static async Task<string?> RestoreLogExcerptAsync(string message)
    {
        const string Marker = "log file: ";
        var at = message.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        var path = new string(message[(at + Marker.Length)..].TakeWhile(c => !char.IsWhiteSpace(c) && c is not ':' and not '"').ToArray());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        return await Node.Criu.CriuLog.ErrorExcerptAsync(path, timeout.Token);
    }

    private async Task RemoveHalfRestoredAsync(string? sandboxId, string logDirectory, string podUid, IReadOnlySet<string> mountsBefore, RestoreContext context, CancellationToken cancellationToken)
    {
        try
        {
            if (sandboxId is not null)
            {
                // RemovePodSandbox removes the sandbox's containers with it.
                await cri.Runtime.StopPodSandboxAsync(sandboxId, cancellationToken);
                await cri.Runtime.RemovePodSandboxAsync(sandboxId, cancellationToken);
            }
            if (Directory.Exists(logDirectory))
            {
                Directory.Delete(logDirectory, recursive: true);
            }
            PodCgroups.Remove(podUid);
            foreach (var mount in LeakedMounts.UnmountNew(mountsBefore))
            {
                AgentLog.LeakedMountRemoved(_logger, context.Id.Value, mount);
            }
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            AgentLog.RestoreCleanupFailed(_logger, e, context.Id.Value, sandboxId ?? "(no sandbox)");
        }
    }
}

/// <summary>The pod cgroups a kubelet removes once a pod's containers are gone (cgroupfs, v1: one per controller).</summary>
internal static class PodCgroups
{
    private const string CgroupRoot = "/sys/fs/cgroup";

    public static void Remove(string podUid)
    {
        if (!Directory.Exists(CgroupRoot))
        {
            return;
        }
        foreach (var controller in Directory.EnumerateDirectories(CgroupRoot))
        {
            var podCgroup = Path.Combine(controller, "kubepods", "besteffort", $"pod{podUid}");
            if (Directory.Exists(podCgroup))
            {
                // rmdir on cgroupfs removes an empty cgroup even though it lists control files.
                Directory.Delete(podCgroup, recursive: false);
            }
        }
    }
}
