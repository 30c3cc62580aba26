using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using Runtime.V1;
using ContainerState = Runtime.V1.ContainerState;

namespace PodMigrate.Node.Cri;

public sealed class KubeletPodRunnerOptions
{
    /// <summary>How long compensations (removing a half-started pod) may take, independent of the caller's token.</summary>
    public TimeSpan CleanupTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The cgroup all pods of the node live under (see <see cref="KubeletPodConfig.PodCgroupParent"/>); empty: none.</summary>
    public string CgroupRoot { get; init; } = "";
}

/// <summary>
/// Runs pods on one node through CRI the way kubelet does: make the images present, run the sandbox, create and
/// start each container with kubelet's labels and annotations. Also lists, removes and execs into those pods,
/// finding them by kubelet's labels. A migrated pod is restored through this same path with a checkpoint image
/// as the container image.
/// </summary>
public sealed partial class KubeletPodRunner
{
    private readonly CriConnection _cri;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly KubeletPodRunnerOptions _options;

    public KubeletPodRunner(CriConnection cri, ILogger<KubeletPodRunner> logger, TimeProvider? time = null, KubeletPodRunnerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(cri);
        ArgumentNullException.ThrowIfNull(logger);
        _cri = cri;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _options = options ?? new KubeletPodRunnerOptions();
    }

    /// <summary>
    /// Starts <paramref name="pod"/> and returns it as the node sees it. A pod of the same namespace/name already
    /// running on the node is AlreadyExists.
    /// </summary>
    public async Task<NodePod> RunAsync(CriPodSpec pod, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var sandboxConfig = pod.Sandbox.Clone();
        var (ns, name, uid) = (sandboxConfig.Metadata.Namespace, sandboxConfig.Metadata.Name, sandboxConfig.Metadata.Uid);

        var existing = await FindSandboxesAsync(ns, name, cancellationToken);
        if (existing.Any(s => s.State == PodSandboxState.SandboxReady))
        {
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"pod {ns}/{name} is already running on {_cri.Target}");
        }
        sandboxConfig.Metadata.Attempt = (uint)existing.Count(s => s.Metadata.Uid == uid);

        var containerConfigs = new List<ContainerConfig>();
        foreach (var container in pod.Containers)
        {
            var config = container.Config.Clone();
            config.Image.Image = await EnsureImageAsync(config, container.PullPolicy, sandboxConfig, cancellationToken);
            containerConfigs.Add(config);
        }

        var sandboxId = await RunSandboxAsync(sandboxConfig, pod.RuntimeHandler, cancellationToken);
        var started = false;
        try
        {
            foreach (var config in containerConfigs)
            {
                var containerId = await _cri.Runtime.CreateContainerAsync(sandboxId, config, sandboxConfig, cancellationToken);
                await _cri.Runtime.StartContainerAsync(containerId, cancellationToken);
                LogContainerStarted(ns, name, config.Metadata.Name, containerId);
            }
            started = true;
        }
        finally
        {
            if (!started)
            {
                // A half-started pod is removed whole, with its own time budget: the caller's token may be what failed.
                using var cleanup = new CancellationTokenSource(_options.CleanupTimeout, _time);
                await RemoveSandboxAsync(sandboxId, sandboxConfig.LogDirectory, uid, TimeSpan.Zero, cleanup.Token);
            }
        }
        var sandbox = (await _cri.Runtime.ListPodSandboxAsync(new PodSandboxFilter { Id = sandboxId }, cancellationToken)).Single();
        return await DescribeAsync(sandbox, cancellationToken);
    }

    /// <summary>
    /// Creates the pod's log directory (kubelet's job; the runtime only writes into it) and runs the sandbox with the
    /// RuntimeClass handler <paramref name="runtimeHandler"/> (null: the node's default runtime); returns its id.
    /// </summary>
    public async Task<string> RunSandboxAsync(PodSandboxConfig sandboxConfig, string? runtimeHandler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sandboxConfig);
        Directory.CreateDirectory(sandboxConfig.LogDirectory);
        string sandboxId;
        try
        {
            sandboxId = await _cri.Runtime.RunPodSandboxAsync(sandboxConfig, runtimeHandler, cancellationToken);
        }
        catch
        {
            Directory.Delete(sandboxConfig.LogDirectory, recursive: true);
            throw;
        }
        LogSandboxStarted(sandboxConfig.Metadata.Namespace, sandboxConfig.Metadata.Name, sandboxId);
        return sandboxId;
    }

    /// <summary>
    /// Stops and removes one sandbox with its containers (SIGTERM, then SIGKILL after <paramref name="gracePeriod"/>, or
    /// each container's pod grace period when null), its log directory and its pod cgroups.
    /// </summary>
    public Task RemoveSandboxAsync(string sandboxId, PodSandboxMetadata metadata, TimeSpan? gracePeriod, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return RemoveSandboxAsync(sandboxId, KubeletPodConfig.LogDirectory(metadata.Namespace, metadata.Name, metadata.Uid), metadata.Uid, gracePeriod, cancellationToken);
    }

    /// <summary>The pods on the node, optionally only those of one namespace.</summary>
    public async Task<IReadOnlyList<NodePod>> ListAsync(string? podNamespace, CancellationToken cancellationToken)
    {
        var filter = new PodSandboxFilter();
        if (!string.IsNullOrEmpty(podNamespace))
        {
            filter.LabelSelector[KubeletLabels.PodNamespace] = podNamespace;
        }
        var sandboxes = await _cri.Runtime.ListPodSandboxAsync(filter, cancellationToken);
        var containers = await _cri.Runtime.ListContainersAsync(null, cancellationToken);
        var pods = new List<NodePod>();
        foreach (var sandbox in sandboxes.OrderBy(s => s.Metadata.Namespace, StringComparer.Ordinal).ThenBy(s => s.Metadata.Name, StringComparer.Ordinal))
        {
            pods.Add(await DescribeAsync(sandbox, containers.Where(c => c.PodSandboxId == sandbox.Id), cancellationToken));
        }
        return pods;
    }

    /// <summary>The pod namespace/name on the node (its ready sandbox, else its newest), or null.</summary>
    public async Task<NodePod?> GetAsync(string podNamespace, string podName, CancellationToken cancellationToken)
    {
        var sandboxes = await FindSandboxesAsync(podNamespace, podName, cancellationToken);
        var sandbox = sandboxes.OrderByDescending(s => s.State == PodSandboxState.SandboxReady).ThenByDescending(s => s.CreatedAt).FirstOrDefault();
        return sandbox is null ? null : await DescribeAsync(sandbox, cancellationToken);
    }

    /// <summary>
    /// Stops and removes every sandbox of namespace/name with its containers (SIGTERM, then SIGKILL after the
    /// pod's grace period, or <paramref name="gracePeriod"/>), its log directory and its pod cgroups. False if there was none.
    /// </summary>
    public async Task<bool> RemoveAsync(string podNamespace, string podName, TimeSpan? gracePeriod, CancellationToken cancellationToken)
    {
        var sandboxes = await FindSandboxesAsync(podNamespace, podName, cancellationToken);
        foreach (var sandbox in sandboxes)
        {
            var uid = sandbox.Metadata.Uid;
            await RemoveSandboxAsync(sandbox.Id, KubeletPodConfig.LogDirectory(podNamespace, podName, uid), uid, gracePeriod, cancellationToken);
        }
        return sandboxes.Count > 0;
    }

    /// <summary>Removes every pod sandbox on the node, and containers that belong to none. Returns how many pods.</summary>
    public async Task<int> RemoveAllAsync(TimeSpan? gracePeriod, CancellationToken cancellationToken)
    {
        var sandboxes = await _cri.Runtime.ListPodSandboxAsync(null, cancellationToken);
        foreach (var sandbox in sandboxes)
        {
            var m = sandbox.Metadata;
            await RemoveSandboxAsync(sandbox.Id, KubeletPodConfig.LogDirectory(m.Namespace, m.Name, m.Uid), m.Uid, gracePeriod, cancellationToken);
        }
        foreach (var orphan in await _cri.Runtime.ListContainersAsync(null, cancellationToken))
        {
            await StopAndRemoveContainerAsync(orphan.Id, gracePeriod ?? TimeSpan.Zero, cancellationToken);
        }
        return sandboxes.Count;
    }

    /// <summary>Runs a command in a running container of the pod (the first container when <paramref name="containerName"/> is null).</summary>
    public async Task<NodeExecResult> ExecAsync(string podNamespace, string podName, string? containerName, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw PodMigrateException.InvalidArgument("exec needs a command");
        }
        var pod = await GetAsync(podNamespace, podName, cancellationToken)
            ?? throw PodMigrateException.NotFound($"pod {podNamespace}/{podName} is not on {_cri.Target}");
        var container = pod.Containers.FirstOrDefault(c => (containerName is null || c.Name == containerName) && c.State == StateName(ContainerState.ContainerRunning))
            ?? throw PodMigrateException.NotFound($"pod {pod.Key} has no running container {containerName ?? "(any)"}");
        var response = await _cri.Runtime.ExecSyncAsync(container.Id, command, timeout, cancellationToken);
        return new NodeExecResult(response.ExitCode, response.Stdout.ToStringUtf8(), response.Stderr.ToStringUtf8());
    }

    private async Task<string> EnsureImageAsync(ContainerConfig container, string pullPolicy, PodSandboxConfig sandboxConfig, CancellationToken cancellationToken)
    {
        var image = container.Image.UserSpecifiedImage;
        if (pullPolicy != "Always")
        {
            if (await _cri.Images.ImageStatusAsync(image, cancellationToken) is { } present)
            {
                return present.Id;
            }
            if (pullPolicy == "Never")
            {
                throw PodMigrateException.FailedPrecondition($"container {container.Metadata.Name}: image {image} is not present on {_cri.Target} and imagePullPolicy is Never");
            }
        }
        var imageRef = await _cri.Images.PullImageAsync(image, sandboxConfig, cancellationToken);
        LogImagePulled(image, imageRef);
        return imageRef;
    }

    private async Task<IReadOnlyList<PodSandbox>> FindSandboxesAsync(string podNamespace, string podName, CancellationToken cancellationToken)
    {
        var filter = new PodSandboxFilter();
        filter.LabelSelector[KubeletLabels.PodNamespace] = podNamespace;
        filter.LabelSelector[KubeletLabels.PodName] = podName;
        return await _cri.Runtime.ListPodSandboxAsync(filter, cancellationToken);
    }

    private async Task RemoveSandboxAsync(string sandboxId, string logDirectory, string podUid, TimeSpan? gracePeriod, CancellationToken cancellationToken)
    {
        var containers = await _cri.Runtime.ListContainersAsync(new ContainerFilter { PodSandboxId = sandboxId }, cancellationToken);
        foreach (var container in containers)
        {
            var grace = gracePeriod ?? GracePeriodOf(container);
            await StopAndRemoveContainerAsync(container.Id, grace, cancellationToken);
        }
        await _cri.Runtime.StopPodSandboxAsync(sandboxId, cancellationToken);
        await _cri.Runtime.RemovePodSandboxAsync(sandboxId, cancellationToken);
        if (Directory.Exists(logDirectory))
        {
            Directory.Delete(logDirectory, recursive: true);
        }
        RemovePodCgroups(podUid);
        LogSandboxRemoved(sandboxId);
    }

    private async Task StopAndRemoveContainerAsync(string containerId, TimeSpan grace, CancellationToken cancellationToken)
    {
        try
        {
            await _cri.Runtime.StopContainerAsync(containerId, grace, cancellationToken);
            await _cri.Runtime.RemoveContainerAsync(containerId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Gone already (removed with its sandbox, or by someone else): the goal is met.
        }
    }

    private static TimeSpan GracePeriodOf(Runtime.V1.Container container)
        => container.Annotations.TryGetValue(KubeletLabels.PodTerminationGracePeriod, out var text) && long.TryParse(text, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : TimeSpan.FromSeconds(30);

    /// <summary>kubelet's pod cgroup manager removes the pod's cgroup (cgroupfs, v1: one per controller) once its containers are gone.</summary>
    private void RemovePodCgroups(string podUid)
    {
        const string CgroupRoot = "/sys/fs/cgroup";
        if (!Directory.Exists(CgroupRoot))
        {
            return;
        }
        foreach (var controller in Directory.EnumerateDirectories(CgroupRoot))
        {
            var podCgroup = controller + KubeletPodConfig.PodCgroupParent(_options.CgroupRoot, podUid);
            try
            {
                if (Directory.Exists(podCgroup))
                {
                    // rmdir on cgroupfs: succeeds for an empty cgroup even though it "contains" control files.
                    Directory.Delete(podCgroup, recursive: false);
                }
            }
            catch (IOException e)
            {
                LogCgroupNotRemoved(podCgroup, e.Message);
            }
        }
    }

    private async Task<NodePod> DescribeAsync(PodSandbox sandbox, CancellationToken cancellationToken)
    {
        var containers = await _cri.Runtime.ListContainersAsync(new ContainerFilter { PodSandboxId = sandbox.Id }, cancellationToken);
        return await DescribeAsync(sandbox, containers, cancellationToken);
    }

    private async Task<NodePod> DescribeAsync(PodSandbox sandbox, IEnumerable<Runtime.V1.Container> containers, CancellationToken cancellationToken)
    {
        string? ip = null;
        if (sandbox.State == PodSandboxState.SandboxReady)
        {
            var status = await _cri.Runtime.PodSandboxStatusAsync(sandbox.Id, cancellationToken);
            ip = string.IsNullOrEmpty(status.Network?.Ip) ? null : status.Network.Ip;
        }
        var m = sandbox.Metadata;
        return new NodePod(
            m.Namespace, m.Name, m.Uid, sandbox.Id,
            sandbox.State == PodSandboxState.SandboxReady ? "Ready" : "NotReady",
            ip, m.Attempt, FromUnixNanos(sandbox.CreatedAt),
            [.. containers
                .OrderBy(c => c.Metadata.Name, StringComparer.Ordinal)
                .Select(c => new NodeContainer(c.Metadata.Name, c.Id, StateName(c.State), c.Image?.UserSpecifiedImage is { Length: > 0 } user ? user : c.Image?.Image ?? "", c.ImageRef, c.Metadata.Attempt, FromUnixNanos(c.CreatedAt)))]);
    }

    private static string StateName(ContainerState state) => state switch
    {
        ContainerState.ContainerCreated => "Created",
        ContainerState.ContainerRunning => "Running",
        ContainerState.ContainerExited => "Exited",
        _ => "Unknown",
    };

    private static DateTimeOffset FromUnixNanos(long nanos) => DateTimeOffset.UnixEpoch.AddTicks(nanos / 100);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Pulled image {Image} as {ImageRef}")]
    private partial void LogImagePulled(string image, string imageRef);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Pod {PodNamespace}/{PodName}: sandbox {SandboxId} running")]
    private partial void LogSandboxStarted(string podNamespace, string podName, string sandboxId);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Pod {PodNamespace}/{PodName}: container {ContainerName} started as {ContainerId}")]
    private partial void LogContainerStarted(string podNamespace, string podName, string containerName, string containerId);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "Sandbox {SandboxId} stopped and removed")]
    private partial void LogSandboxRemoved(string sandboxId);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "Pod cgroup {Cgroup} not removed: {Reason}")]
    private partial void LogCgroupNotRemoved(string cgroup, string reason);
}
