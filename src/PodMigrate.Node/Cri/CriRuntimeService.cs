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
    private readonly RuntimeService.RuntimeServiceClient _runtime;

    internal CriRuntimeService(CriConnection connection)
    {
        _connection = connection;
        _runtime = new RuntimeService.RuntimeServiceClient(connection.Invoker);
    }

    public Task<VersionResponse> VersionAsync(CancellationToken cancellationToken)
        => _connection.CallAsync("Version", o => _runtime.VersionAsync(new VersionRequest { Version = "v1" }, o), DefaultTimeout, "", cancellationToken);

    public Task<StatusResponse> StatusAsync(bool verbose, CancellationToken cancellationToken)
        => _connection.CallAsync("Status", o => _runtime.StatusAsync(new StatusRequest { Verbose = verbose }, o), DefaultTimeout, "", cancellationToken);

    public async Task<string> RunPodSandboxAsync(PodSandboxConfig config, string? runtimeHandler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var request = new RunPodSandboxRequest { Config = config, RuntimeHandler = runtimeHandler ?? "" };
        var response = await _connection.CallAsync("RunPodSandbox", o => _runtime.RunPodSandboxAsync(request, o), DefaultTimeout, $"pod {config.Metadata?.Namespace}/{config.Metadata?.Name}", cancellationToken);
        return response.PodSandboxId;
    }

    public Task StopPodSandboxAsync(string podSandboxId, CancellationToken cancellationToken)
        => _connection.CallAsync("StopPodSandbox", o => _runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podSandboxId }, o), DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);

    public Task RemovePodSandboxAsync(string podSandboxId, CancellationToken cancellationToken)
        => _connection.CallAsync("RemovePodSandbox", o => _runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podSandboxId }, o), DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);

    public async Task<PodSandboxStatus> PodSandboxStatusAsync(string podSandboxId, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync("PodSandboxStatus", o => _runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podSandboxId }, o), DefaultTimeout, $"sandbox {podSandboxId}", cancellationToken);
        return response.Status;
    }

    public async Task<IReadOnlyList<PodSandbox>> ListPodSandboxAsync(PodSandboxFilter? filter, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync("ListPodSandbox", o => _runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter }, o), DefaultTimeout, "", cancellationToken);
        return response.Items;
    }

    public async Task<string> CreateContainerAsync(string podSandboxId, ContainerConfig config, PodSandboxConfig sandboxConfig, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var request = new CreateContainerRequest { PodSandboxId = podSandboxId, Config = config, SandboxConfig = sandboxConfig };
        var response = await _connection.CallAsync("CreateContainer", o => _runtime.CreateContainerAsync(request, o), DefaultTimeout, $"container {config.Metadata?.Name} in sandbox {podSandboxId}", cancellationToken);
        return response.ContainerId;
    }

    public Task StartContainerAsync(string containerId, CancellationToken cancellationToken)
        => _connection.CallAsync("StartContainer", o => _runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId }, o), DefaultTimeout, $"container {containerId}", cancellationToken);

    /// <summary>SIGTERM, then SIGKILL after <paramref name="gracePeriod"/> (the runtime enforces it).</summary>
    public Task StopContainerAsync(string containerId, TimeSpan gracePeriod, CancellationToken cancellationToken)
    {
        var request = new StopContainerRequest { ContainerId = containerId, Timeout = (long)gracePeriod.TotalSeconds };
        return _connection.CallAsync("StopContainer", o => _runtime.StopContainerAsync(request, o), gracePeriod + Slack, $"container {containerId}", cancellationToken);
    }

    public Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken)
        => _connection.CallAsync("RemoveContainer", o => _runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = containerId }, o), DefaultTimeout, $"container {containerId}", cancellationToken);

    public async Task<IReadOnlyList<Container>> ListContainersAsync(ContainerFilter? filter, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync("ListContainers", o => _runtime.ListContainersAsync(new ListContainersRequest { Filter = filter }, o), DefaultTimeout, "", cancellationToken);
        return response.Containers;
    }

    public async Task<ContainerStatus> ContainerStatusAsync(string containerId, CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync("ContainerStatus", o => _runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId }, o), DefaultTimeout, $"container {containerId}", cancellationToken);
        return response.Status;
    }

    /// <summary>Runs <paramref name="command"/> in the container and waits for it (at most <paramref name="timeout"/>, enforced by the runtime).</summary>
    public Task<ExecSyncResponse> ExecSyncAsync(string containerId, IEnumerable<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new ExecSyncRequest { ContainerId = containerId, Timeout = (long)Math.Ceiling(timeout.TotalSeconds) };
        request.Cmd.AddRange(command);
        return _connection.CallAsync("ExecSync", o => _runtime.ExecSyncAsync(request, o), timeout + Slack, $"container {containerId}", cancellationToken);
    }

    /// <summary>Checkpoints the container into the archive <paramref name="location"/>; the container keeps running.</summary>
    public Task CheckpointContainerAsync(string containerId, string location, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new CheckpointContainerRequest { ContainerId = containerId, Location = location, Timeout = (long)Math.Ceiling(timeout.TotalSeconds) };
        return _connection.CallAsync("CheckpointContainer", o => _runtime.CheckpointContainerAsync(request, o), timeout + Slack, $"container {containerId} to {location}", cancellationToken);
    }
}
