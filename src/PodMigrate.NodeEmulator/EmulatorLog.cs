using Microsoft.Extensions.Logging;

namespace PodMigrate.NodeEmulator;

/// <summary>The node emulator's events: ids 5000-5099 (node), 5100-5199 (pods), 5200-5299 (probes, mirror pod).</summary>
internal static partial class EmulatorLog
{
    [LoggerMessage(EventId = 5000, Level = LogLevel.Information, Message = "Node emulator for {NodeName} starting: runtime {CriTarget}, address {Address}")]
    public static partial void Starting(ILogger logger, string nodeName, string criTarget, string address);

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Node emulator for {NodeName} running (cluster {ClusterId})")]
    public static partial void Started(ILogger logger, string nodeName, string clusterId);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Node emulator for {NodeName} stopped; its pods keep running")]
    public static partial void Stopped(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Cannot {Doing} yet, retrying in {Delay}: {Reason}")]
    public static partial void Waiting(ILogger logger, string doing, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Information, Message = "Node {NodeName}: memory capacity {Bytes} bytes enforced on the cgroup {Cgroup} of all its pods")]
    public static partial void NodeMemoryEnforced(ILogger logger, string nodeName, long bytes, string cgroup);

    [LoggerMessage(EventId = 5010, Level = LogLevel.Information, Message = "Node {NodeName} registered")]
    public static partial void NodeRegistered(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "Node {NodeName} existed already: taken over")]
    public static partial void NodeAdopted(ILogger logger, string nodeName);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Warning, Message = "Node {NodeName} not registered, retrying in {Delay}")]
    public static partial void NodeRegistrationFailed(ILogger logger, string nodeName, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Information, Message = "Node {NodeName} status written: Ready={Ready}")]
    public static partial void NodeStatusWritten(ILogger logger, string nodeName, string ready);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Warning, Message = "Node {NodeName} status not written")]
    public static partial void NodeStatusUpdateFailed(ILogger logger, string nodeName, Exception exception);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Warning, Message = "Node {NodeName} lease not renewed")]
    public static partial void LeaseRenewalFailed(ILogger logger, string nodeName, Exception exception);

    [LoggerMessage(EventId = 5020, Level = LogLevel.Information, Message = "Pod watch expired at resourceVersion {ResourceVersion}: listing again")]
    public static partial void WatchExpired(ILogger logger, string resourceVersion);

    [LoggerMessage(EventId = 5021, Level = LogLevel.Warning, Message = "Pod list/watch failed, retrying in {Delay}")]
    public static partial void WatchFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 5100, Level = LogLevel.Information, Message = "Pod {Pod} (uid {PodUid}) bound to this node")]
    public static partial void PodAccepted(ILogger logger, string pod, string podUid);

    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Pod {Pod}: sync failed")]
    public static partial void PodSyncFailed(ILogger logger, string pod, Exception exception);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Information, Message = "Pod {Pod}: sandbox {SandboxId} adopted")]
    public static partial void SandboxAdopted(ILogger logger, string pod, string sandboxId);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Warning, Message = "Pod {Pod}: sandbox {SandboxId} is not ready any more: starting the pod again in a new one")]
    public static partial void SandboxLost(ILogger logger, string pod, string sandboxId);

    [LoggerMessage(EventId = 5104, Level = LogLevel.Warning, Message = "Pod {Pod}: sandbox not created: {Reason}")]
    public static partial void SandboxFailed(ILogger logger, string pod, string reason);

    [LoggerMessage(EventId = 5105, Level = LogLevel.Information, Message = "Pod {Pod}: sandbox {SandboxId} stopped")]
    public static partial void SandboxStopped(ILogger logger, string pod, string sandboxId);

    [LoggerMessage(EventId = 5106, Level = LogLevel.Information, Message = "Pulled image {Image} as {ImageRef}")]
    public static partial void ImagePulled(ILogger logger, string image, string imageRef);

    [LoggerMessage(EventId = 5107, Level = LogLevel.Warning, Message = "Image {Image} not pulled: {Reason}")]
    public static partial void ImagePullFailed(ILogger logger, string image, string reason);

    [LoggerMessage(EventId = 5108, Level = LogLevel.Information, Message = "Pod {Pod}: container {ContainerName} started as {ContainerId} (restart {Attempt})")]
    public static partial void ContainerStarted(ILogger logger, string pod, string containerName, string containerId, uint attempt);

    [LoggerMessage(EventId = 5109, Level = LogLevel.Warning, Message = "Pod {Pod}: container {ContainerName}: {Reason}: {Message}")]
    public static partial void ContainerFailed(ILogger logger, string pod, string containerName, string reason, string message);

    [LoggerMessage(EventId = 5110, Level = LogLevel.Information, Message = "Pod {Pod}: phase {Phase}, IP {PodIp}")]
    public static partial void PodPhase(ILogger logger, string pod, string phase, string podIp);

    [LoggerMessage(EventId = 5111, Level = LogLevel.Information, Message = "Pod {Pod} finished: {Phase}")]
    public static partial void PodFinished(ILogger logger, string pod, string phase);

    [LoggerMessage(EventId = 5112, Level = LogLevel.Information, Message = "Pod {Pod}: terminating (grace period {GracePeriod}, {Sandboxes} sandboxes)")]
    public static partial void PodTerminating(ILogger logger, string pod, TimeSpan gracePeriod, int sandboxes);

    [LoggerMessage(EventId = 5113, Level = LogLevel.Information, Message = "Pod {Pod}: terminated and removed (already gone from the API server: {Gone})")]
    public static partial void PodTerminated(ILogger logger, string pod, bool gone);

    [LoggerMessage(EventId = 5114, Level = LogLevel.Information, Message = "Removing sandbox {SandboxId} of pod {Pod} (uid {PodUid}): the pod is not in the API server")]
    public static partial void OrphanRemoving(ILogger logger, string pod, string podUid, string sandboxId);

    [LoggerMessage(EventId = 5115, Level = LogLevel.Warning, Message = "Housekeeping failed")]
    public static partial void HousekeepingFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 5200, Level = LogLevel.Information, Message = "{Container}: ready={Ready} {Output}")]
    public static partial void ReadinessChanged(ILogger logger, string container, bool ready, string output);

    [LoggerMessage(EventId = 5201, Level = LogLevel.Debug, Message = "{Container}: readiness probe failed: {Output}")]
    public static partial void ReadinessProbeFailed(ILogger logger, string container, string output);

    [LoggerMessage(EventId = 5210, Level = LogLevel.Information, Message = "Mirror pod {MirrorPod} created (uid {PodUid})")]
    public static partial void MirrorPodCreated(ILogger logger, string mirrorPod, string podUid);

    [LoggerMessage(EventId = 5211, Level = LogLevel.Information, Message = "Mirror pod {MirrorPod} is being deleted or is outdated: replacing it")]
    public static partial void MirrorPodReplacing(ILogger logger, string mirrorPod);

    [LoggerMessage(EventId = 5212, Level = LogLevel.Information, Message = "Mirror pod {MirrorPod}: agent ready={Ready}")]
    public static partial void MirrorPodStatus(ILogger logger, string mirrorPod, bool ready);

    [LoggerMessage(EventId = 5213, Level = LogLevel.Warning, Message = "Mirror pod {MirrorPod} not synced")]
    public static partial void MirrorPodFailed(ILogger logger, string mirrorPod, Exception exception);
}
