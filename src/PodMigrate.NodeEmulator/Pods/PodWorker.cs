using System.Threading.Channels;
using k8s;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.NodeEmulator.Probes;
using ContainerFilter = Runtime.V1.ContainerFilter;
using CriContainer = Runtime.V1.Container;
using CriContainerState = Runtime.V1.ContainerState;
using CriContainerStatus = Runtime.V1.ContainerStatus;
using PodSandbox = Runtime.V1.PodSandbox;
using PodSandboxConfig = Runtime.V1.PodSandboxConfig;
using PodSandboxState = Runtime.V1.PodSandboxState;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>
/// kubelet's pod worker for one pod (one uid): every sync compares the pod with what the runtime has and acts, one
/// step at a time, then reports the status. Sandbox first (adopted when this emulator made one before), then each
/// container: pull by policy, create and start, restart after an exit as restartPolicy says with back-off
/// (CrashLoopBackOff). A deletionTimestamp stops the containers within the grace period, removes the sandbox and
/// finishes the deletion. A sync runs when the pod changes, a probe flips, or every <see cref="NodeEmulatorOptions.PodSyncInterval"/>.
/// Stopping the worker (emulator shutdown) leaves the pod running, as a stopped kubelet does.
/// </summary>
internal sealed class PodWorker : IAsyncDisposable
{
    private readonly PodWorkerContext _context;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Lock _gate = new();
    private readonly KeyedBackoff _backoff;
    private readonly ImagePuller _images;
    private readonly Dictionary<string, ReadinessWorker> _probes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Reason, string? Message)> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, uint> _attempts = new(StringComparer.Ordinal);
    // A container's status once it has started or exited does not change again: asked once per container.
    private readonly Dictionary<string, CriContainerStatus> _settled = new(StringComparer.Ordinal);
    private V1Pod _pod;
    private bool _gone;
    private string? _sandboxId;
    private uint? _sandboxAttempt;
    private PodSandboxConfig? _sandboxConfig;
    private PodAddresses? _addresses;
    private V1PodStatus? _written;
    private string? _writtenText;
    private DateTimeOffset? _startTime;
    private bool _terminal;

    public PodWorker(PodWorkerContext context, V1Pod pod)
    {
        _context = context;
        _pod = pod;
        Uid = pod.Metadata.Uid!;
        _backoff = new KeyedBackoff(context.Options.RestartBackoffInitial, context.Options.RestartBackoffMax, context.Time);
        _images = new ImagePuller(context.Cri, _backoff, context.Time, context.Logger);
    }

    public string Uid { get; }

    private string Key => _pod.Key();

    /// <summary>A newer version of the pod from the API server.</summary>
    public void Update(V1Pod pod)
    {
        lock (_gate)
        {
            _pod = pod;
        }
        Wake();
    }

    /// <summary>The pod is gone from the API server (deleted with no grace, or while the emulator was not watching).</summary>
    public void MarkGone()
    {
        lock (_gate)
        {
            _gone = true;
        }
        Wake();
    }

    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>Syncs until the pod's life on this node is over (terminated, cleaned up, deleted) or the token ends.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                if (await SyncAsync(cancellationToken))
                {
                    return;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The loop's boundary: a failed sync is logged and retried at the next one.
                EmulatorLog.PodSyncFailed(_context.Logger, Key, e);
            }
            await WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var probe in _probes.Values)
        {
            await probe.DisposeAsync();
        }
        _probes.Clear();
    }

    private async Task WaitAsync(CancellationToken cancellationToken)
    {
        using var interval = new CancellationTokenSource(_context.Options.PodSyncInterval, _context.Time);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interval.Token);
        try
        {
            await _wake.Reader.WaitToReadAsync(either.Token);
            _wake.Reader.TryRead(out _);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The sync interval passed.
        }
    }

    /// <summary>
    /// One sync, as kubelet's syncPod: observe what the runtime has of the pod, decide (<see cref="PodActions.Compute"/>),
    /// perform the decision through CRI, report the status. True when the worker is done.
    /// </summary>
    private async Task<bool> SyncAsync(CancellationToken cancellationToken)
    {
        V1Pod pod;
        bool gone;
        lock (_gate)
        {
            pod = _pod;
            gone = _gone;
        }
        var snapshot = await ObserveAsync(gone, cancellationToken);
        var actions = PodActions.Compute(pod, snapshot.Observation, _backoff, _context.Time.GetUtcNow());
        switch (actions.Step)
        {
            case PodStep.Kill:
                await KillAsync(pod, gone, actions, snapshot, cancellationToken);
                return true;
            case PodStep.None:
                return false;
            case PodStep.StayFinished:
                // Finished before this emulator started: kubelet never runs a pod again once it reached a terminal phase.
                _terminal = true;
                await StopSandboxesAsync(pod, cancellationToken);
                return false;
        }
        var now = Times.Truncate(_context.Time.GetUtcNow());
        _startTime ??= pod.Status?.StartTime ?? now;
        if (actions.Step == PodStep.Unsupported)
        {
            await WriteStatusAsync(pod, Unsupported(pod, actions.Message!, now), cancellationToken);
            return false;
        }
        if (_written is null && pod.Status?.ContainerStatuses is null)
        {
            // What kubelet reports before anything runs: Pending, every container ContainerCreating.
            await WriteStatusAsync(pod, BuildStatus(pod, [.. pod.Spec.Containers.Select(c => Waiting(c, "ContainerCreating", null))], sandboxReady: false, podIsTerminal: false, now), cancellationToken);
        }
        if (!await PerformAsync(pod, actions.Sandbox!, snapshot, cancellationToken))
        {
            return false;
        }
        var acted = false;
        foreach (var action in actions.Containers)
        {
            acted |= await PerformAsync(pod, pod.Spec.Containers.First(c => c.Name == action.Name), action, cancellationToken);
        }
        var containers = !acted && snapshot.Containers.TryGetValue(_sandboxId!, out var listed) ? listed : await ListContainersAsync(cancellationToken);
        var statuses = await ObserveContainersAsync(pod, containers, podIsTerminal: false, cancellationToken);
        var status = BuildStatus(pod, statuses, sandboxReady: true, podIsTerminal: false, now);
        await WriteStatusAsync(pod, status, cancellationToken);
        if (PodStatusBuilder.IsTerminal(status.Phase))
        {
            // All containers are done and none will restart: kubelet stops the sandbox (it is removed with the pod).
            _terminal = true;
            await StopProbesAsync();
            await StopSandboxesAsync(pod, cancellationToken);
            EmulatorLog.PodFinished(_context.Logger, Key, status.Phase!);
        }
        return false;
    }

    /// <summary>
    /// What the runtime has of the pod (this emulator's sandboxes of it and their containers, with the exit of those that
    /// exited) and what this worker remembers, for <see cref="PodActions.Compute"/>; and the CRI objects listed, to act on.
    /// </summary>
    private async Task<RuntimeSnapshot> ObserveAsync(bool gone, CancellationToken cancellationToken)
    {
        var runtime = _context.Cri.Runtime;
        var sandboxes = await runtime.ListPodSandboxAsync(_context.OwnSandboxes(Uid), cancellationToken);
        var listed = new Dictionary<string, IReadOnlyList<CriContainer>>(StringComparer.Ordinal);
        var containers = new List<ObservedContainer>();
        foreach (var sandbox in sandboxes)
        {
            var inSandbox = await runtime.ListContainersAsync(new ContainerFilter { PodSandboxId = sandbox.Id }, cancellationToken);
            listed[sandbox.Id] = inSandbox;
            foreach (var container in inSandbox)
            {
                containers.Add(await ObserveAsync(sandbox.Id, container, cancellationToken));
            }
        }
        var observation = new PodObservation
        {
            Gone = gone,
            Sandboxes = [.. sandboxes.Select(s => new ObservedSandbox(s.Id, s.State == PodSandboxState.SandboxReady, s.Metadata.Attempt))],
            Containers = containers,
            SandboxId = _sandboxId,
            SandboxAttempt = _sandboxAttempt,
            StartedAttempts = new Dictionary<string, uint>(_attempts, StringComparer.Ordinal),
            Reported = _written is not null,
            Terminal = _terminal,
        };
        return new RuntimeSnapshot(observation, sandboxes.ToDictionary(s => s.Id, StringComparer.Ordinal), listed);
    }

    private async Task<ObservedContainer> ObserveAsync(string sandboxId, CriContainer container, CancellationToken cancellationToken)
    {
        var state = container.State switch
        {
            CriContainerState.ContainerCreated => ObservedContainerState.Created,
            CriContainerState.ContainerRunning => ObservedContainerState.Running,
            CriContainerState.ContainerExited => ObservedContainerState.Exited,
            _ => ObservedContainerState.Unknown,
        };
        var observed = new ObservedContainer(container.Id, sandboxId, container.Metadata.Name, container.Metadata.Attempt, state, container.CreatedAt);
        if (state != ObservedContainerState.Exited)
        {
            return observed;
        }
        var exited = await StatusOfAsync(container, cancellationToken);
        return observed with { ExitCode = exited.ExitCode, FinishedAt = Times.FromUnixNanos(exited.FinishedAt) };
    }

    /// <summary>Performs the sandbox step; true when the pod has a ready sandbox to run its containers in.</summary>
    private async Task<bool> PerformAsync(V1Pod pod, SandboxAction action, RuntimeSnapshot snapshot, CancellationToken cancellationToken)
    {
        if (action.Lost is { } lost)
        {
            // Stopped or removed underneath: kubelet kills what is left and starts the pod again in a new sandbox.
            EmulatorLog.SandboxLost(_context.Logger, Key, lost);
            await ForgetSandboxAsync();
        }
        foreach (var stale in action.Remove.Select(id => snapshot.Sandboxes[id]))
        {
            await _context.Runner.RemoveSandboxAsync(stale.Id, stale.Metadata, TimeSpan.Zero, cancellationToken);
        }
        _sandboxAttempt = action.NewestAttempt;
        switch (action.Step)
        {
            case SandboxStep.Keep:
                return true;
            case SandboxStep.WaitBackOff:
                return false;
            case SandboxStep.Adopt:
                _sandboxId = action.Id;
                _sandboxAttempt = action.Attempt;
                _sandboxConfig = SandboxConfig(pod, action.Attempt!.Value);
                EmulatorLog.SandboxAdopted(_context.Logger, Key, action.Id!);
                break;
            default:
            {
                var attempt = action.Attempt!.Value;
                var config = SandboxConfig(pod, attempt);
                try
                {
                    _sandboxId = await _context.Runner.RunSandboxAsync(config, PodCriConfig.RuntimeHandler(pod), cancellationToken);
                }
                catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
                {
                    _backoff.Next(PodActions.SandboxKey, _context.Time.GetUtcNow());
                    EmulatorLog.SandboxFailed(_context.Logger, Key, e.Message);
                    return false;
                }
                _backoff.Reset(PodActions.SandboxKey);
                _sandboxAttempt = attempt;
                _sandboxConfig = config;
                break;
            }
        }
        _addresses = await AddressesAsync(pod, _sandboxId!, cancellationToken);
        return true;
    }

    private PodSandboxConfig SandboxConfig(V1Pod pod, uint attempt)
    {
        var config = PodCriConfig.BuildSandboxConfig(pod, attempt, "api", _context.Time.GetUtcNow(), _context.Options.CgroupRoot);
        _context.MarkSandbox(config);
        return config;
    }

    private async Task<PodAddresses> AddressesAsync(V1Pod pod, string sandboxId, CancellationToken cancellationToken)
    {
        if (pod.Spec.HostNetwork == true)
        {
            return new PodAddresses([_context.Options.Address], _context.Options.Address);
        }
        var status = await _context.Cri.Runtime.PodSandboxStatusAsync(sandboxId, cancellationToken);
        var ips = new List<string>();
        if (!string.IsNullOrEmpty(status.Network?.Ip))
        {
            ips.Add(status.Network.Ip);
            ips.AddRange(status.Network.AdditionalIps.Select(a => a.Ip).Where(ip => !string.IsNullOrEmpty(ip)));
        }
        return new PodAddresses(ips, _context.Options.Address);
    }

    private async Task ForgetSandboxAsync()
    {
        await StopProbesAsync();
        _sandboxId = null;
        _sandboxConfig = null;
        _addresses = null;
    }

    /// <summary>Performs one container's step; true when something was created, started or removed.</summary>
    private async Task<bool> PerformAsync(V1Pod pod, V1Container spec, ContainerAction action, CancellationToken cancellationToken)
    {
        switch (action.Step)
        {
            case ContainerStep.Running:
            case ContainerStep.Finished:
                _waiting.Remove(spec.Name);
                return false;
            case ContainerStep.CrashLoopBackOff:
                _waiting[spec.Name] = ("CrashLoopBackOff", action.Message);
                return false;
            case ContainerStep.Start:
                return !action.StartBackedOff && await StartContainerAsync(pod, spec, action.Attempt, cancellationToken);
            default:
                if (action.Step == ContainerStep.Restart)
                {
                    _backoff.Next(PodActions.RestartKey(spec.Name), action.FinishedAt!.Value);
                }
                foreach (var id in action.Remove)
                {
                    await RemoveContainerAsync(id, cancellationToken);
                }
                if (!action.StartBackedOff)
                {
                    await StartContainerAsync(pod, spec, action.Attempt, cancellationToken);
                }
                return true;
        }
    }

    private async Task<bool> StartContainerAsync(V1Pod pod, V1Container spec, uint attempt, CancellationToken cancellationToken)
    {
        var startKey = PodActions.StartKey(spec.Name);
        var image = await _images.EnsureAsync(spec, _sandboxConfig!, $"image/{spec.Name}", cancellationToken);
        if (image.ImageRef is null)
        {
            _waiting[spec.Name] = (image.Reason!, image.Message);
            return false;
        }
        var runtime = _context.Cri.Runtime;
        Runtime.V1.ContainerConfig config;
        try
        {
            config = PodCriConfig.BuildContainerConfig(pod, spec, image.ImageRef, attempt);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.InvalidArgument)
        {
            _waiting[spec.Name] = ("CreateContainerConfigError", e.Message);
            return false;
        }
        string containerId;
        try
        {
            containerId = await runtime.CreateContainerAsync(_sandboxId!, config, _sandboxConfig!, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
        {
            _backoff.Next(startKey, _context.Time.GetUtcNow());
            _waiting[spec.Name] = ("CreateContainerError", e.Message);
            EmulatorLog.ContainerFailed(_context.Logger, Key, spec.Name, "CreateContainerError", e.Message);
            return false;
        }
        try
        {
            await runtime.StartContainerAsync(containerId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
        {
            // Created but not started: removed at once, with its own time budget, so no half-made container stays behind.
            using var cleanup = new CancellationTokenSource(_context.Options.CleanupTimeout, _context.Time);
            await RemoveContainerAsync(containerId, cleanup.Token);
            _backoff.Next(startKey, _context.Time.GetUtcNow());
            _waiting[spec.Name] = ("RunContainerError", e.Message);
            EmulatorLog.ContainerFailed(_context.Logger, Key, spec.Name, "RunContainerError", e.Message);
            return true;
        }
        _backoff.Reset(startKey);
        _waiting.Remove(spec.Name);
        _attempts[spec.Name] = attempt;
        EmulatorLog.ContainerStarted(_context.Logger, Key, spec.Name, containerId, attempt);
        return true;
    }

    /// <summary>The containers' statuses as the API shows them; starts and stops readiness probers to match.</summary>
    private async Task<List<V1ContainerStatus>> ObserveContainersAsync(V1Pod pod, IReadOnlyList<CriContainer> containers, bool podIsTerminal, CancellationToken cancellationToken)
    {
        var statuses = new List<V1ContainerStatus>();
        foreach (var spec in pod.Spec.Containers)
        {
            var history = History(containers, spec.Name);
            var latest = history.FirstOrDefault();
            if (latest is null || latest.State is not (CriContainerState.ContainerRunning or CriContainerState.ContainerExited))
            {
                await StopProbeAsync(spec.Name);
                var (reason, message) = _waiting.GetValueOrDefault(spec.Name, ("ContainerCreating", null));
                var waiting = Waiting(spec, reason, message);
                waiting.RestartCount = (int)(latest?.Metadata.Attempt ?? (_attempts.TryGetValue(spec.Name, out var a) ? a : 0));
                statuses.Add(waiting);
                continue;
            }
            var observed = await StatusOfAsync(latest, cancellationToken);
            var previous = history.Skip(1).FirstOrDefault(c => c.State == CriContainerState.ContainerExited);
            var status = new V1ContainerStatus
            {
                Name = spec.Name,
                Image = spec.Image,
                ImageID = observed.ImageRef,
                ContainerID = _context.ContainerId(latest.Id),
                RestartCount = (int)latest.Metadata.Attempt,
            };
            if (latest.State == CriContainerState.ContainerRunning && !podIsTerminal)
            {
                var startedAt = Times.FromUnixNanos(observed.StartedAt);
                status.State = new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = startedAt?.UtcDateTime } };
                status.Started = true;
                status.Ready = await ReadinessAsync(pod, spec, latest.Id, startedAt ?? _context.Time.GetUtcNow());
                status.LastState = previous is null ? null : await TerminatedAsync(previous, cancellationToken);
            }
            else
            {
                await StopProbeAsync(spec.Name);
                var terminated = latest.State == CriContainerState.ContainerExited
                    ? await TerminatedAsync(latest, cancellationToken)
                    : new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = 137, Reason = "Error", ContainerID = status.ContainerID } };
                status.Started = false;
                if (!podIsTerminal && _waiting.TryGetValue(spec.Name, out var restart))
                {
                    status.State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = restart.Reason, Message = restart.Message } };
                    status.LastState = terminated;
                }
                else
                {
                    status.State = terminated;
                    status.LastState = previous is null ? null : await TerminatedAsync(previous, cancellationToken);
                }
            }
            statuses.Add(status);
        }
        return statuses;
    }

    private async Task<bool> ReadinessAsync(V1Pod pod, V1Container spec, string containerId, DateTimeOffset startedAt)
    {
        if (spec.ReadinessProbe is not { } probe)
        {
            return true;
        }
        if (_probes.TryGetValue(spec.Name, out var worker) && worker.Target.ContainerId == containerId)
        {
            return worker.Ready;
        }
        await StopProbeAsync(spec.Name);
        var host = _addresses is { PodIps.Count: > 0 } addresses ? addresses.PodIps[0] : _context.Options.Address;
        var target = new ProbeTarget(host, spec.Ports ?? [], containerId);
        _probes[spec.Name] = new ReadinessWorker(_context.Prober, probe, target, startedAt, Wake, _context.Time, _context.Logger, $"{pod.Key()}/{spec.Name}");
        return false;
    }

    private async Task StopProbeAsync(string containerName)
    {
        if (_probes.Remove(containerName, out var worker))
        {
            await worker.DisposeAsync();
        }
    }

    private async Task StopProbesAsync()
    {
        foreach (var name in _probes.Keys.ToList())
        {
            await StopProbeAsync(name);
        }
    }

    private async Task<V1ContainerState> TerminatedAsync(CriContainer container, CancellationToken cancellationToken)
    {
        var status = await StatusOfAsync(container, cancellationToken);
        var reason = PodStatusBuilder.TerminatedReason(status.Reason, status.ExitCode);
        return new V1ContainerState
        {
            Terminated = new V1ContainerStateTerminated
            {
                ExitCode = status.ExitCode,
                Reason = reason,
                Message = string.IsNullOrEmpty(status.Message) ? null : status.Message,
                StartedAt = Times.FromUnixNanos(status.StartedAt)?.UtcDateTime,
                FinishedAt = Times.FromUnixNanos(status.FinishedAt)?.UtcDateTime,
                ContainerID = _context.ContainerId(container.Id),
            },
        };
    }

    /// <summary>
    /// CRI ContainerStatus of a listed container, asked once per state it is listed in: a running container's start
    /// and an exited one's end never change.
    /// </summary>
    private async Task<CriContainerStatus> StatusOfAsync(CriContainer container, CancellationToken cancellationToken)
    {
        if (_settled.TryGetValue(container.Id, out var cached) && cached.State == container.State)
        {
            return cached;
        }
        var status = await _context.Cri.Runtime.ContainerStatusAsync(container.Id, cancellationToken);
        _settled[container.Id] = status;
        return status;
    }

    private V1ContainerStatus Waiting(V1Container spec, string reason, string? message) => new()
    {
        Name = spec.Name,
        Image = spec.Image,
        ImageID = "",
        Ready = false,
        Started = false,
        RestartCount = _attempts.TryGetValue(spec.Name, out var attempt) ? (int)attempt : 0,
        State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = reason, Message = message } },
    };

    private V1PodStatus BuildStatus(V1Pod pod, IReadOnlyList<V1ContainerStatus> containers, bool sandboxReady, bool podIsTerminal, DateTimeOffset now)
        => PodStatusBuilder.Build(pod, _written ?? pod.Status, containers, _addresses ?? new PodAddresses([], _context.Options.Address), sandboxReady, podIsTerminal, _startTime ?? now, now);

    private V1PodStatus Unsupported(V1Pod pod, string message, DateTimeOffset now)
    {
        var status = BuildStatus(pod, [.. pod.Spec.Containers.Select(c => Waiting(c, "PodInitializing", null))], sandboxReady: false, podIsTerminal: false, now);
        status.Message = message;
        status.Reason = "Unsupported";
        return status;
    }

    private async Task WriteStatusAsync(V1Pod pod, V1PodStatus status, CancellationToken cancellationToken)
    {
        var text = PodStatusWriter.Serialize(status);
        if (text == _writtenText)
        {
            return;
        }
        try
        {
            await PodStatusWriter.WriteAsync(_context.Api, pod, status, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Deleted meanwhile: the watch brings the news, and the next sync tears the pod down.
            return;
        }
        if (_written?.Phase != status.Phase)
        {
            EmulatorLog.PodPhase(_context.Logger, Key, status.Phase ?? "", status.PodIP ?? "");
        }
        _written = status;
        _writtenText = text;
    }

    /// <summary>
    /// kubelet's pod termination (<see cref="PodStep.Kill"/>): the containers get SIGTERM and, after the grace period,
    /// SIGKILL (all in parallel), the final status is reported, the sandboxes go, and the API object is deleted for good
    /// (grace period 0).
    /// </summary>
    private async Task KillAsync(V1Pod pod, bool gone, PodActions actions, RuntimeSnapshot snapshot, CancellationToken cancellationToken)
    {
        await StopProbesAsync();
        EmulatorLog.PodTerminating(_context.Logger, Key, actions.GracePeriod, actions.SandboxesToRemove.Count);
        await Task.WhenAll(actions.ContainersToStop.Select(id => StopContainerAsync(id, actions.GracePeriod, cancellationToken)));
        if (actions.ReportFinalStatus)
        {
            var stopped = await ListContainersAsync(cancellationToken);
            var now = Times.Truncate(_context.Time.GetUtcNow());
            var statuses = await ObserveContainersAsync(pod, stopped, podIsTerminal: true, cancellationToken);
            await WriteStatusAsync(pod, BuildStatus(pod, statuses, sandboxReady: false, podIsTerminal: true, now), cancellationToken);
        }
        foreach (var sandbox in actions.SandboxesToRemove.Select(id => snapshot.Sandboxes[id]))
        {
            await _context.Runner.RemoveSandboxAsync(sandbox.Id, sandbox.Metadata, TimeSpan.Zero, cancellationToken);
        }
        if (actions.DeleteFromApi)
        {
            try
            {
                var (ns, name) = (pod.Metadata.NamespaceProperty, pod.Metadata.Name);
                var body = new V1DeleteOptions { GracePeriodSeconds = 0, Preconditions = new V1Preconditions { Uid = Uid } };
                await KubeApiErrors.CallAsync(t => _context.Api.Kubernetes.CoreV1.DeleteNamespacedPodAsync(name, ns, body, cancellationToken: t),
                    $"delete pod {ns}/{name}", cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Aborted)
            {
                // Gone already, or the name now belongs to another pod (uid precondition): nothing of ours is left.
            }
        }
        EmulatorLog.PodTerminated(_context.Logger, Key, gone);
    }

    private async Task StopContainerAsync(string containerId, TimeSpan grace, CancellationToken cancellationToken)
    {
        try
        {
            await _context.Cri.Runtime.StopContainerAsync(containerId, grace, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Exited and removed meanwhile: stopped is what was wanted.
        }
    }

    private async Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken)
    {
        try
        {
            await _context.Cri.Runtime.RemoveContainerAsync(containerId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Gone already.
        }
        _settled.Remove(containerId);
    }

    private async Task StopSandboxesAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var key = pod.Key();
        foreach (var sandbox in await _context.Cri.Runtime.ListPodSandboxAsync(_context.OwnSandboxes(Uid), cancellationToken))
        {
            if (sandbox.State == PodSandboxState.SandboxReady)
            {
                await _context.Cri.Runtime.StopPodSandboxAsync(sandbox.Id, cancellationToken);
                EmulatorLog.SandboxStopped(_context.Logger, key, sandbox.Id);
            }
        }
    }

    private async Task<IReadOnlyList<CriContainer>> ListContainersAsync(CancellationToken cancellationToken)
        => _sandboxId is null ? [] : await _context.Cri.Runtime.ListContainersAsync(new ContainerFilter { PodSandboxId = _sandboxId }, cancellationToken);

    /// <summary>The runtime's containers of one spec container, newest attempt first.</summary>
    private static List<CriContainer> History(IReadOnlyList<CriContainer> containers, string name)
        => [.. containers.Where(c => c.Metadata.Name == name).OrderByDescending(c => c.Metadata.Attempt).ThenByDescending(c => c.CreatedAt)];

    /// <summary>The CRI objects an observation listed: the pod's sandboxes by id, and the containers of each.</summary>
    private readonly record struct RuntimeSnapshot(
        PodObservation Observation,
        IReadOnlyDictionary<string, PodSandbox> Sandboxes,
        IReadOnlyDictionary<string, IReadOnlyList<CriContainer>> Containers);
}
