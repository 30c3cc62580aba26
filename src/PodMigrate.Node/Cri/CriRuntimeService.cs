using Runtime.V1;

namespace PodMigrate.Node.Cri;

/// <summary>CRI v1 RuntimeService: pod sandboxes, containers, exec, checkpoint. Thin: one RPC per method.</summary>
public sealed class CriRuntimeService
{
    /// <summary>kubelet's default --runtime-request-timeout.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Room on top of a runtime-side timeout (stop grace, exec, checkpoint) before the client gives up.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(30);

    private readonly CriConnection _connection;

    internal CriRuntimeService(CriConnection connection) => _connection = connection;

    public Task<VersionResponse> VersionAsync(CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.Version, new VersionRequest { Version = "v1" }, DefaultTimeout, "", cancellationToken);

    public Task<StatusResponse> StatusAsync(bool verbose, CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.Status, new StatusRequest { Verbose = verbose }, DefaultTimeout, "", cancellationToken);

    public async Task<string> RunPodSandboxAsync(PodSandboxConfig config, string? runtimeHandler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var request = new RunPodSandboxRequest { Config = config, RuntimeHandler = runtimeHandler ?? "" };
        var response = await _connection.CallAsync(CriMethods.RunPodSandbox, request, DefaultTimeout, $"pod {config.Metadata?.Namespace}/{config.Metadata?.Name}", cancellationToken);
        return response.PodSandboxId;
    }

    public Task StopPodSandboxAsync(string podSandboxId, CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.StopPodSandbox, new StopPodSandboxRequest { PodSandboxId = podSandboxId }, DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);

    public Task RemovePodSandboxAsync(string podSandboxId, CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.RemovePodSandbox, new RemovePodSandboxRequest { PodSandboxId = podSandboxId }, DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);

    public async Task<PodSandboxStatus> PodSandboxStatusAsync(string podSandboxId, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync(CriMethods.PodSandboxStatus, new PodSandboxStatusRequest { PodSandboxId = podSandboxId }, DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);
        return response.Status;
    }

    public async Task<IReadOnlyList<PodSandbox>> ListPodSandboxAsync(PodSandboxFilter? filter, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync(CriMethods.ListPodSandbox, new ListPodSandboxRequest { Filter = filter }, DefaultTimeout, "", cancellationToken);
        return response.Items;
    }

    public async Task<string> CreateContainerAsync(string podSandboxId, ContainerConfig config, PodSandboxConfig sandboxConfig, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var request = new CreateContainerRequest { PodSandboxId = podSandboxId, Config = config, SandboxConfig = sandboxConfig };
        var response = await _connection.CallAsync(CriMethods.CreateContainer, request, DefaultTimeout, $"container {config.Metadata?.Name} in sandbox {podSandboxId}", cancellationToken);
        return response.ContainerId;
    }

    public Task StartContainerAsync(string containerId, CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.StartContainer, new StartContainerRequest { ContainerId = containerId }, DefaultTimeout, $"container {containerId}", cancellationToken);

    /// <summary>SIGTERM, then SIGKILL after <paramref name="gracePeriod"/> (the runtime enforces it).</summary>
    public Task StopContainerAsync(string containerId, TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        var request = new StopContainerRequest { ContainerId = containerId, Timeout = (long)gracePeriod.TotalSeconds };
        return _connection.CallAsync(CriMethods.StopContainer, request, gracePeriod + Slack, $"container {containerId}", cancellationToken);
    }

    public Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken)
        => _connection.CallAsync(CriMethods.RemoveContainer, new RemoveContainerRequest { ContainerId = containerId }, DefaultTimeout, $"container {containerId}", cancellationToken);

    public async Task<IReadOnlyList<Container>> ListContainersAsync(ContainerFilter? filter, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync(CriMethods.ListContainers, new ListContainersRequest { Filter = filter }, DefaultTimeout, "", cancellationToken);
        return response.Containers;
    }

    public async Task<ContainerStatus> ContainerStatusAsync(string containerId, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync(CriMethods.ContainerStatus, new ContainerStatusRequest { ContainerId = containerId }, DefaultTimeout, $"container {containerId}", cancellationToken);
        return response.Status;
    }

    /// <summary>Runs <paramref name="command"/> in the container and waits for it (at most <paramref name="timeout"/>, enforced by the runtime).</summary>
    public Task<ExecSyncResponse> ExecSyncAsync(string containerId, IEnumerable<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new ExecSyncRequest { ContainerId = containerId, Timeout = (long)Math.Ceiling(timeout.TotalSeconds) };
        request.Cmd.AddRange(command);
        return _connection.CallAsync(CriMethods.ExecSync, request, timeout + Slack, $"container {containerId}", cancellationToken);
    }

    /// <summary>Checkpoints the container into the archive <paramref name="location"/>; the container keeps running.</summary>
    public Task CheckpointContainerAsync(string containerId, string location, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new CheckpointContainerRequest { ContainerId = containerId, Location = location, Timeout = (long)Math.Ceiling(timeout.TotalSeconds) };
        return _connection.CallAsync(CriMethods.CheckpointContainer, request, timeout + Slack, $"container {containerId} to {location}", cancellationToken);
    }
}
