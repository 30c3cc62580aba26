using k8s.Models;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>The pod's addresses: its IPs (the node's for host-network pods, none before the sandbox runs) and the node's.</summary>
internal sealed record PodAddresses(IReadOnlyList<string> PodIps, string HostIp);

/// <summary>
/// kubelet's generateAPIPodStatus for pods without init containers: the phase from the containers' states (getPhase), the
/// conditions with transition times carried over from the previous status, the addresses and start time. Pure.
/// </summary>
internal static class PodStatusBuilder
{
    public const string Pending = "Pending";
    public const string Running = "Running";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";

    public static bool IsTerminal(string? phase) => phase is Succeeded or Failed;

    /// <summary>
    /// A terminated container's reason, as kubelet reports it: the runtime's (containerd says "OOMKilled" when the task's
    /// OOM event fired, e.g. on a node whose memory cgroup is full), else Completed for exit code 0 and Error otherwise.
    /// </summary>
    public static string TerminatedReason(string? runtimeReason, int exitCode)
        => string.IsNullOrEmpty(runtimeReason) ? (exitCode == 0 ? "Completed" : "Error") : runtimeReason;

    /// <summary>
    /// kubelet's getPhase. <paramref name="podIsTerminal"/>: the pod is being torn down and nothing will restart, so
    /// stopped containers end it whatever the restart policy.
    /// </summary>
    public static string Phase(V1PodSpec spec, IReadOnlyList<V1ContainerStatus> statuses, bool podIsTerminal)
    {
        int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
        foreach (var container in spec.Containers)
        {
            var status = statuses.FirstOrDefault(s => s.Name == container.Name);
            switch (status?.State)
            {
                case null:
                    unknown++;
                    break;
                case { Running: not null }:
                    running++;
                    break;
                case { Terminated: { } terminated }:
                    stopped++;
                    succeeded += terminated.ExitCode == 0 ? 1 : 0;
                    break;
                case { Waiting: not null } when status.LastState?.Terminated is not null:
                    // Waiting to restart (CrashLoopBackOff): it has run, so it counts as stopped.
                    stopped++;
                    break;
                case { Waiting: not null }:
                    waiting++;
                    break;
                default:
                    unknown++;
                    break;
            }
        }
        var policy = spec.RestartPolicy ?? "Always";
        return (unknown, running, waiting, stopped) switch
        {
            (_, _, > 0, _) => Pending,
            (0, > 0, _, _) => Running,
            (0, 0, _, > 0) when podIsTerminal => stopped == succeeded ? Succeeded : Failed,
            (0, 0, _, > 0) when policy == "Always" => Running,
            (0, 0, _, > 0) when stopped == succeeded => Succeeded,
            (0, 0, _, > 0) when policy == "Never" => Failed,
            // OnFailure with a failed container: it is being restarted.
            (0, 0, _, > 0) => Running,
            _ => Pending,
        };
    }

    public static V1PodStatus Build(
        V1Pod pod,
        V1PodStatus? previous,
        IReadOnlyList<V1ContainerStatus> containers,
        PodAddresses addresses,
        bool sandboxReady,
        bool podIsTerminal,
        DateTimeOffset startTime,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var phase = Phase(pod.Spec, containers, podIsTerminal);
        var unready = pod.Spec.Containers.Where(c => containers.FirstOrDefault(s => s.Name == c.Name)?.Ready != true).Select(c => c.Name).ToList();
        var (readyStatus, readyReason, readyMessage) = phase == Succeeded
            ? (false, "PodCompleted", (string?)null)
            : unready.Count == 0
                ? (true, null, null)
                : (false, "ContainersNotReady", $"containers with unready status: [{string.Join(' ', unready)}]");
        var scheduled = previous?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
        return new V1PodStatus
        {
            Phase = phase,
            HostIP = addresses.HostIp,
            HostIPs = [new V1HostIP { Ip = addresses.HostIp }],
            PodIP = addresses.PodIps.Count > 0 ? addresses.PodIps[0] : null,
            PodIPs = addresses.PodIps.Count == 0 ? null : [.. addresses.PodIps.Select(ip => new V1PodIP { Ip = ip })],
            StartTime = startTime.UtcDateTime,
            Conditions =
            [
                Condition(previous, "PodReadyToStartContainers", sandboxReady, null, null, now),
                Condition(previous, "Initialized", true, null, null, now),
                Condition(previous, "Ready", readyStatus, readyReason, readyMessage, now),
                Condition(previous, "ContainersReady", readyStatus, readyReason, readyMessage, now),
                // The scheduler's condition; kubelet adds it for pods that were bound without one.
                scheduled ?? Condition(previous, "PodScheduled", true, null, null, now),
            ],
            ContainerStatuses = [.. containers],
        };
    }

    private static V1PodCondition Condition(V1PodStatus? previous, string type, bool value, string? reason, string? message, DateTimeOffset now)
    {
        var status = value ? "True" : "False";
        var before = previous?.Conditions?.FirstOrDefault(c => c.Type == type);
        return new V1PodCondition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            LastTransitionTime = before?.Status == status ? before.LastTransitionTime ?? now.UtcDateTime : now.UtcDateTime,
        };
    }
}
