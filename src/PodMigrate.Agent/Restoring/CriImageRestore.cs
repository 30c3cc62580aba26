using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Restore;
using Runtime.V1;

namespace PodMigrate.Agent.Restoring;

/// <summary>
/// RESTORE_CRI_IMAGE: the runtime restores the container itself when it is created with a checkpoint image as its
/// image (containerd 2.1–2.3, CRI-O), which is what an unmodified kubelet does for a pod whose image is one. The
/// checkpoint becomes an image in this node's containerd first (<see cref="CheckpointImages"/>); with image_only that
/// is all, and the caller (a kubelet running the controller's clone pod) creates the container; the image stays until
/// its checkpoint is deleted. Otherwise the pod runs the way a kubelet runs it: ImageStatus on the image reference
/// (present, so no pull), RunPodSandbox with kubelet's config, CreateContainer with the image id CRI resolved,
/// StartContainer; an image imported only for that is removed afterwards. Every failure removes the sandbox (and with
/// it the container), its log directory and pod cgroups, and the read-only checkpointNNN mount (with its view
/// snapshot) that containerd 2.1 leaks when its restore fails.
/// </summary>
internal sealed class CriImageRestore(
    CheckpointImages images,
    CriConnection cri,
    ContainerdConnection containerd,
    TimeProvider time,
    ILoggerFactory loggers)
{
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);

    private readonly ILogger _logger = loggers.CreateLogger<CriImageRestore>();
    private readonly KubeletPodRunner _runner = new(cri, loggers.CreateLogger<KubeletPodRunner>(), time);

    public async Task<RestoredTarget> RunAsync(RestoreContext context, RestoreRequest request, CancellationToken cancellationToken)
    {
        var target = request.Pod;
        if (!request.ImageOnly && await _runner.GetAsync(target.Namespace, target.Name, cancellationToken) is { State: "Ready" })
        {
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"pod {target.Namespace}/{target.Name} is already running on this node");
        }
        var image = await images.ImportAsync(context, cancellationToken);
        if (request.ImageOnly)
        {
            return new RestoredTarget("", CheckpointImage: image.Reference);
        }

        try
        {
            var pod = PodFor(target, image, context);
            return await context.PhaseAsync(Phase.Restore, $"restoring pod {target.Namespace}/{target.Name} through CRI", () => RunPodAsync(pod, context, cancellationToken));
        }
        finally
        {
            if (!image.Reused)
            {
                // The restored container needs the image no more (containerd copied the checkpoint into it): an image
                // made only for this restore goes, or every restore would leave twice the checkpoint's size on the node.
                // One that was there before (image_only, for a kubelet) stays until its checkpoint is deleted.
                await context.PhaseAsync(Phase.Cleanup, $"removing checkpoint image {image.Reference}", () => RemoveImageAsync(context));
            }
        }
    }

    private async Task RemoveImageAsync(RestoreContext context)
    {
        using var timeout = new CancellationTokenSource(CleanupTimeout);
        try
        {
            await images.RemoveAsync(context.Id, timeout.Token);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
        {
            AgentLog.RestoreCleanupFailed(_logger, e, context.Id.Value, "its checkpoint image");
        }
    }

    /// <summary>
    /// The pod a kubelet would run for this target, as the CRI requests it sends: the checkpointed container, its image
    /// the checkpoint image (imagePullPolicy Never), the target's labels and annotations, nothing else from a spec.
    /// </summary>
    private CriPodSpec PodFor(PodTarget target, NodeCheckpointImage image, RestoreContext context)
    {
        var identity = new PodSandboxMetadata
        {
            Namespace = target.Namespace,
            Name = target.Name,
            Uid = target.Uid.Length > 0 ? target.Uid : Guid.NewGuid().ToString(),
        };
        var namespaces = KubeletPodConfig.PodNamespaces(hostNetwork: false, shareProcessNamespace: false);
        var sandbox = KubeletPodConfig.NewSandboxConfig(
            identity, attempt: 0, hostname: target.Name, target.Labels, target.Annotations, configSource: "api", time.GetUtcNow(), namespaces, privileged: false);
        var name = target.Container.Length > 0 ? target.Container : ContainerNameOf(image, context);
        var container = KubeletPodConfig.NewContainerConfig(
            identity, name, imageRef: image.Reference, userImage: image.Reference, restartCount: 0,
            KubeletPodConfig.NewSecurityContext(namespaces, privileged: false),
            KubeletPodConfig.DefaultTerminationGracePeriodSeconds,
            hash: KubeletPodConfig.Hash(System.Text.Encoding.UTF8.GetBytes($"{name}\n{image.Reference}")));
        return new CriPodSpec(sandbox, RuntimeHandler: null, [new CriContainerSpec(container, PullPolicy: "Never")]);
    }

    private static string ContainerNameOf(NodeCheckpointImage image, RestoreContext context)
    {
        var name = context.Stored.Manifest.Container?.Name ?? image.ContainerName;
        return Containers.KubeNames.IsValidName(name)
            ? name
            : throw PodMigrateException.InvalidArgument($"checkpoint {context.Id} names its container '{name}', which is no Kubernetes name: give the target's container name");
    }

    private async Task<RestoredTarget> RunPodAsync(CriPodSpec pod, RestoreContext context, CancellationToken cancellationToken)
    {
        var sandboxConfig = pod.Sandbox;
        var (ns, name) = (sandboxConfig.Metadata.Namespace, sandboxConfig.Metadata.Name);
        var containerConfig = pod.Containers[0].Config;
        var reference = containerConfig.Image.UserSpecifiedImage;
        // As a kubelet does: the pod's image is looked up by its reference, and the container created with the id CRI resolved.
        var image = await cri.Images.ImageStatusAsync(reference, cancellationToken)
            ?? throw PodMigrateException.FailedPrecondition($"image {reference} is not present on this node (imagePullPolicy Never)");
        containerConfig.Image.Image = image.Id;
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
            return new RestoredTarget(containerId, sandboxId, pid, status.Network?.Ip ?? "", reference);
        }
        catch
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await RemoveHalfRestoredAsync(sandboxId, sandboxConfig.LogDirectory, sandboxConfig.Metadata.Uid, mountsBefore, context, cleanup.Token);
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
                // containerd names the read-only view of the checkpoint image after the mount point.
                if (await RemoveSnapshotAsync(mount, cancellationToken))
                {
                    AgentLog.LeakedSnapshotRemoved(_logger, context.Id.Value, mount);
                }
            }
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            AgentLog.RestoreCleanupFailed(_logger, e, context.Id.Value, sandboxId ?? "(no sandbox)");
        }
    }

    private async Task<bool> RemoveSnapshotAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            await new ContainerdSnapshots(containerd).RemoveAsync(key, cancellationToken);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
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
