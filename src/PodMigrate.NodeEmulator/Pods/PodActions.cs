using k8s.Models;
using PodMigrate.Core.Retry;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>A sandbox of the pod as the runtime lists it (only this emulator's, see <see cref="PodWorkerContext.OwnSandboxes"/>).</summary>
internal sealed record ObservedSandbox(string Id, bool Ready, uint Attempt);

internal enum ObservedContainerState
{
    /// <summary>Created but never started.</summary>
    Created,
    Running,
    Exited,
    Unknown,
}

/// <summary>A container of one of the pod's sandboxes; the exit code and end are known once it has exited.</summary>
internal sealed record ObservedContainer(
    string Id,
    string SandboxId,
    string Name,
    uint Attempt,
    ObservedContainerState State,
    long CreatedAt,
    int ExitCode = 0,
    DateTimeOffset? FinishedAt = null);

/// <summary>
/// What a sync decides from besides the pod: what the runtime has of it (this emulator's sandboxes of the pod and all
/// their containers, listed at the start of the sync, as kubelet's PLEG relists) and what the worker remembers.
/// </summary>
internal sealed record PodObservation
{
    /// <summary>The API server no longer has the pod (deleted with no grace, or while the emulator was not watching).</summary>
    public bool Gone { get; init; }

    public IReadOnlyList<ObservedSandbox> Sandboxes { get; init; } = [];

    public IReadOnlyList<ObservedContainer> Containers { get; init; } = [];

    /// <summary>The sandbox the worker runs the pod in since an earlier sync (made or adopted), if any.</summary>
    public string? SandboxId { get; init; }

    /// <summary>The newest sandbox attempt the worker has made or seen: the next one is one more.</summary>
    public uint? SandboxAttempt { get; init; }

    /// <summary>Per container, the attempt the worker last started (what the next start counts from in a new sandbox).</summary>
    public IReadOnlyDictionary<string, uint> StartedAttempts { get; init; } = new Dictionary<string, uint>(StringComparer.Ordinal);

    /// <summary>The worker has written the pod's status at least once.</summary>
    public bool Reported { get; init; }

    /// <summary>The pod reached a terminal phase under this worker: nothing runs again.</summary>
    public bool Terminal { get; init; }
}

internal enum PodStep
{
    /// <summary>Nothing: the pod has finished and only a deletion will change that.</summary>
    None,

    /// <summary>
    /// kubelet's KillPod: the pod is deleted or gone: stop its running containers within the grace period, report the
    /// final status, remove its sandboxes and delete the API object for good. The worker is done afterwards.
    /// </summary>
    Kill,

    /// <summary>The pod reached a terminal phase before this emulator started: kubelet never runs it again; stop its sandboxes.</summary>
    StayFinished,

    /// <summary>The pod needs something the emulator does not do: report it and run nothing.</summary>
    Unsupported,

    /// <summary>Run the pod: the <see cref="PodActions.Sandbox"/> step, then each <see cref="PodActions.Containers"/> step.</summary>
    Run,
}

internal enum SandboxStep
{
    /// <summary>The sandbox in use is ready: keep it.</summary>
    Keep,

    /// <summary>A ready sandbox this emulator made before (a restarted emulator): run the pod in it.</summary>
    Adopt,

    /// <summary>No ready sandbox: run a new one, attempt <see cref="SandboxAction.Attempt"/>.</summary>
    Create,

    /// <summary>No ready sandbox, and the last attempt to run one failed less than its back-off ago: nothing runs this sync.</summary>
    WaitBackOff,
}

/// <summary>
/// The sandbox step. <see cref="Lost"/>: the sandbox in use is stopped or removed underneath (kubelet's "sandbox
/// changed"): the worker forgets it, and the pod starts again in a new sandbox. <see cref="Remove"/>: this emulator's
/// sandboxes of the pod that are not ready, removed first. <see cref="Attempt"/>: the attempt of the sandbox kept,
/// adopted or created. <see cref="NewestAttempt"/>: the newest attempt the worker has made or seen, the removed ones
/// included (what it remembers; a new sandbox is one more).
/// </summary>
internal sealed record SandboxAction(SandboxStep Step, string? Id, uint? Attempt)
{
    public string? Lost { get; init; }

    public IReadOnlyList<string> Remove { get; init; } = [];

    public uint? NewestAttempt { get; init; }
}

internal enum ContainerStep
{
    /// <summary>Running: nothing to do; it waits for nothing.</summary>
    Running,

    /// <summary>Exited and not to be restarted (restartPolicy): nothing to do; it waits for nothing.</summary>
    Finished,

    /// <summary>Exited and to be restarted, but its restart back-off has not passed: it waits in CrashLoopBackOff.</summary>
    CrashLoopBackOff,

    /// <summary>No container of it in the sandbox: create and start attempt <see cref="ContainerAction.Attempt"/>.</summary>
    Start,

    /// <summary>
    /// Exited and due: record the restart (the back-off counts from <see cref="ContainerAction.FinishedAt"/>), remove the
    /// older attempts (kubelet keeps the last exited one for lastState and logs), start the next attempt.
    /// </summary>
    Restart,

    /// <summary>Created but never started (the emulator stopped in between) or in an unknown state: remove it, start the next attempt.</summary>
    Replace,
}

/// <summary>
/// One container's step. <see cref="StartBackedOff"/>: its last create or start failed less than its back-off ago, so
/// the start of this step waits for a later sync (the removals and the restart record still happen).
/// </summary>
internal sealed record ContainerAction(string Name, ContainerStep Step, uint Attempt = 0)
{
    public IReadOnlyList<string> Remove { get; init; } = [];

    public DateTimeOffset? FinishedAt { get; init; }

    public string? Message { get; init; }

    public bool StartBackedOff { get; init; }
}

/// <summary>
/// What one sync of a pod does, decided by <see cref="Compute"/> from the pod, what the runtime has and the clock, as the
/// kubelet's computePodActions does; the <see cref="PodWorker"/> then performs it through CRI and reports the status.
/// </summary>
internal sealed record PodActions(PodStep Step)
{
    /// <summary>The back-off key of running the pod's sandbox.</summary>
    public const string SandboxKey = "sandbox";

    /// <summary>Unsupported: why.</summary>
    public string? Message { get; init; }

    /// <summary>Run: the sandbox step.</summary>
    public SandboxAction? Sandbox { get; init; }

    /// <summary>Run: one step per container of the spec, in its order (none while the sandbox waits).</summary>
    public IReadOnlyList<ContainerAction> Containers { get; init; } = [];

    /// <summary>Kill: how long the containers get between SIGTERM and SIGKILL.</summary>
    public TimeSpan GracePeriod { get; init; }

    /// <summary>Kill: the running containers to stop (of every sandbox of the pod).</summary>
    public IReadOnlyList<string> ContainersToStop { get; init; } = [];

    /// <summary>Kill: the sandboxes to remove once the containers are stopped.</summary>
    public IReadOnlyList<string> SandboxesToRemove { get; init; } = [];

    /// <summary>Kill: report the stopped containers in a final status (the pod is still in the API server and ran here).</summary>
    public bool ReportFinalStatus { get; init; }

    /// <summary>Kill: delete the API object for good (grace period 0), as kubelet does once the pod is stopped.</summary>
    public bool DeleteFromApi { get; init; }

    /// <summary>The back-off key of restarting a container after it exited (CrashLoopBackOff).</summary>
    public static string RestartKey(string container) => $"restart/{container}";

    /// <summary>The back-off key of creating and starting a container after a failure to.</summary>
    public static string StartKey(string container) => $"start/{container}";

    /// <summary>
    /// Decides one sync. Pure: it reads the pod, the observation, the back-offs (<paramref name="backoff"/> is only asked)
    /// and <paramref name="now"/>, and changes none of them.
    /// </summary>
    public static PodActions Compute(V1Pod pod, PodObservation observed, KeyedBackoff backoff, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(observed);
        ArgumentNullException.ThrowIfNull(backoff);
        if (observed.Gone || pod.Metadata.DeletionTimestamp is not null)
        {
            return Kill(pod, observed);
        }
        if (observed.Terminal)
        {
            return new PodActions(PodStep.None);
        }
        if (!observed.Reported && PodStatusBuilder.IsTerminal(pod.Status?.Phase))
        {
            return new PodActions(PodStep.StayFinished);
        }
        if (pod.Spec.InitContainers is { Count: > 0 })
        {
            return new PodActions(PodStep.Unsupported) { Message = "init containers are not supported by the node emulator" };
        }
        var sandbox = SandboxStepOf(observed, backoff, now);
        if (sandbox.Step == SandboxStep.WaitBackOff)
        {
            return new PodActions(PodStep.Run) { Sandbox = sandbox };
        }
        // A new sandbox has no containers yet; a kept or adopted one has those the runtime lists in it.
        var containers = sandbox.Step == SandboxStep.Create ? [] : observed.Containers.Where(c => c.SandboxId == sandbox.Id).ToList();
        return new PodActions(PodStep.Run)
        {
            Sandbox = sandbox,
            Containers = [.. pod.Spec.Containers.Select(spec => ContainerStepOf(pod, spec, History(containers, spec.Name), observed, backoff, now))],
        };
    }

    /// <summary>The runtime's containers of one spec container, newest attempt first.</summary>
    public static List<ObservedContainer> History(IEnumerable<ObservedContainer> containers, string name)
        => [.. containers.Where(c => c.Name == name).OrderByDescending(c => c.Attempt).ThenByDescending(c => c.CreatedAt)];

    /// <summary>kubelet's rule: Never restarts nothing, OnFailure what failed, Always (the default) everything.</summary>
    public static bool ShouldRestart(string? restartPolicy, int exitCode) => restartPolicy switch
    {
        "Never" => false,
        "OnFailure" => exitCode != 0,
        _ => true,
    };

    private static PodActions Kill(V1Pod pod, PodObservation observed)
    {
        var seconds = observed.Gone
            ? PodCriConfig.TerminationGracePeriodSeconds(pod)
            : pod.Metadata.DeletionGracePeriodSeconds ?? PodCriConfig.TerminationGracePeriodSeconds(pod);
        return new PodActions(PodStep.Kill)
        {
            GracePeriod = TimeSpan.FromSeconds(seconds),
            ContainersToStop = [.. observed.Containers.Where(c => c.State == ObservedContainerState.Running).Select(c => c.Id)],
            SandboxesToRemove = [.. observed.Sandboxes.Select(s => s.Id)],
            ReportFinalStatus = !observed.Gone && observed.SandboxId is not null && !observed.Terminal,
            DeleteFromApi = !observed.Gone,
        };
    }

    private static SandboxAction SandboxStepOf(PodObservation observed, KeyedBackoff backoff, DateTimeOffset now)
    {
        string? lost = null;
        if (observed.SandboxId is { } current)
        {
            if (observed.Sandboxes.Any(s => s.Id == current && s.Ready))
            {
                return new SandboxAction(SandboxStep.Keep, current, observed.SandboxAttempt) { NewestAttempt = observed.SandboxAttempt };
            }
            lost = current;
        }
        var stale = observed.Sandboxes.Where(s => !s.Ready).ToList();
        var newest = observed.SandboxAttempt;
        foreach (var sandbox in stale)
        {
            newest = Math.Max(newest ?? 0, sandbox.Attempt);
        }
        var remove = stale.Select(s => s.Id).ToList();
        if (observed.Sandboxes.Where(s => s.Ready).MaxBy(s => s.Attempt) is { } ready)
        {
            return new SandboxAction(SandboxStep.Adopt, ready.Id, ready.Attempt) { Lost = lost, Remove = remove, NewestAttempt = newest };
        }
        if (backoff.IsInBackOffSinceUpdate(SandboxKey, now))
        {
            return new SandboxAction(SandboxStep.WaitBackOff, null, null) { Lost = lost, Remove = remove, NewestAttempt = newest };
        }
        return new SandboxAction(SandboxStep.Create, null, newest is { } last ? last + 1 : 0) { Lost = lost, Remove = remove, NewestAttempt = newest };
    }

    private static ContainerAction ContainerStepOf(V1Pod pod, V1Container spec, List<ObservedContainer> history, PodObservation observed, KeyedBackoff backoff, DateTimeOffset now)
    {
        var startBackedOff = backoff.IsInBackOffSinceUpdate(StartKey(spec.Name), now);
        var latest = history.Count > 0 ? history[0] : null;
        switch (latest?.State)
        {
            case null:
            {
                var attempt = observed.StartedAttempts.TryGetValue(spec.Name, out var last) ? last + 1 : 0;
                return new ContainerAction(spec.Name, ContainerStep.Start, attempt) { StartBackedOff = startBackedOff };
            }
            case ObservedContainerState.Running:
                return new ContainerAction(spec.Name, ContainerStep.Running, latest.Attempt);
            case ObservedContainerState.Exited:
            {
                if (!ShouldRestart(pod.Spec.RestartPolicy, latest.ExitCode))
                {
                    return new ContainerAction(spec.Name, ContainerStep.Finished, latest.Attempt);
                }
                var key = RestartKey(spec.Name);
                var finishedAt = latest.FinishedAt ?? now;
                if (backoff.IsInBackOffSince(key, finishedAt, now))
                {
                    var message = $"back-off {(long)backoff.Get(key).TotalSeconds}s restarting failed container={spec.Name} pod={pod.Metadata.Name}_{pod.Metadata.NamespaceProperty}({pod.Metadata.Uid})";
                    return new ContainerAction(spec.Name, ContainerStep.CrashLoopBackOff, latest.Attempt) { Message = message };
                }
                return new ContainerAction(spec.Name, ContainerStep.Restart, latest.Attempt + 1)
                {
                    Remove = [.. history.Skip(1).Select(c => c.Id)],
                    FinishedAt = finishedAt,
                    StartBackedOff = startBackedOff,
                };
            }
            default:
                return new ContainerAction(spec.Name, ContainerStep.Replace, latest.Attempt + 1) { Remove = [latest.Id], StartBackedOff = startBackedOff };
        }
    }
}
