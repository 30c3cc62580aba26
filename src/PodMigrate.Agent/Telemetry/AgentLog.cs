using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Telemetry;

/// <summary>The agent's log events, with stable ids.</summary>
internal static partial class AgentLog
{
    [LoggerMessage(1000, LogLevel.Information, "Agent for node {NodeName} serving on {UnixSocket} and TCP port {GrpcPort}; share {ShareRoot}")]
    public static partial void Started(ILogger logger, string nodeName, string unixSocket, int grpcPort, string shareRoot);

    [LoggerMessage(1001, LogLevel.Information, "gRPC on TCP {ListenAddress}:{GrpcPort}: mutual TLS as {Subject} (valid until {NotAfter:u}), clients must chain to {ClientCaFile}")]
    public static partial void ServingMutualTls(ILogger logger, string listenAddress, int grpcPort, string subject, DateTime notAfter, string clientCaFile);

    [LoggerMessage(1002, LogLevel.Warning, "gRPC on TCP {ListenAddress}:{GrpcPort} in CLEARTEXT: no TLS configured (local use only)")]
    public static partial void ServingCleartext(ILogger logger, string listenAddress, int grpcPort);

    [LoggerMessage(1004, LogLevel.Information, "Checkpoints are signed as {Subject} (valid until {NotAfter:u}); restored only when signed by an agent certificate that chains to {TrustFile}")]
    public static partial void SigningCheckpoints(ILogger logger, string subject, DateTime notAfter, string trustFile);

    [LoggerMessage(1005, LogLevel.Warning, "UNSIGNED checkpoints are accepted (Agent:AllowUnsignedCheckpoints, development only): anyone who can write to the share can plant a checkpoint this node will restore")]
    public static partial void UnsignedCheckpointsAllowed(ILogger logger);

    [LoggerMessage(1003, LogLevel.Warning, "Could not ask CRIU for its version and features at start-up; the first checkpoint will ask again")]
    public static partial void CriuWarmupFailed(ILogger logger, Exception exception);

    [LoggerMessage(1100, LogLevel.Information, "Checkpoint {CheckpointId} of {Container} started ({Disposition}, codec {Codec})")]
    public static partial void CheckpointStarted(ILogger logger, string checkpointId, string container, string disposition, string codec);

    [LoggerMessage(1101, LogLevel.Information, "Checkpoint {CheckpointId} of {Container} published: {RawBytes} bytes raw, {ArchiveBytes} archived, frozen {FrozenMs} ms, total {WallMs} ms")]
    public static partial void CheckpointPublished(ILogger logger, string checkpointId, string container, long rawBytes, long archiveBytes, double frozenMs, double wallMs);

    [LoggerMessage(1102, LogLevel.Warning, "Checkpoint {CheckpointId} of {Container} failed ({Kind}): {Message}")]
    public static partial void CheckpointFailed(ILogger logger, string checkpointId, string container, ErrorKind kind, string message);

    [LoggerMessage(1103, LogLevel.Information, "Container {Container} resumed after checkpoint {CheckpointId}")]
    public static partial void SourceResumed(ILogger logger, string container, string checkpointId);

    [LoggerMessage(1104, LogLevel.Information, "Container {Container} left stopped after checkpoint {CheckpointId}: waiting for Resume or Discard")]
    public static partial void SourceLeftStopped(ILogger logger, string container, string checkpointId);

    [LoggerMessage(1105, LogLevel.Information, "Container {Container} discarded after checkpoint {CheckpointId}")]
    public static partial void SourceDiscarded(ILogger logger, string container, string checkpointId);

    [LoggerMessage(1106, LogLevel.Error, "Could not resume container {Container} after checkpoint {CheckpointId} failed; it stays recorded for recovery")]
    public static partial void ResumeFailed(ILogger logger, Exception exception, string container, string checkpointId);

    [LoggerMessage(1107, LogLevel.Warning, "Checkpoint {CheckpointId}: the share cannot say whether it was published; its source stays held until Resume or Discard")]
    public static partial void PublicationUnknown(ILogger logger, Exception exception, string checkpointId);

    [LoggerMessage(1108, LogLevel.Warning, "Checkpoint {CheckpointId} of {Container} is published (committed) but a later step failed; the source stays held until Resume or Discard")]
    public static partial void PostPublishStepFailed(ILogger logger, Exception exception, string checkpointId, string container);

    [LoggerMessage(1109, LogLevel.Warning, "Checkpoint {CheckpointId} of {Container} failed after its publication: it is committed and its source stays held until Resume or Discard")]
    public static partial void CommittedDespiteFailure(ILogger logger, Exception exception, string checkpointId, string container);

    [LoggerMessage(1112, LogLevel.Warning, "Checkpoint {CheckpointId} of {Container} failed after it was sealed (a target may run from it): its source stays held until Resume, or Discard once the checkpoint is published")]
    public static partial void SealedDespiteFailure(ILogger logger, Exception exception, string checkpointId, string container);

    [LoggerMessage(1111, LogLevel.Warning, "Retention after a checkpoint failed; the checkpoint stands")]
    public static partial void RetentionFailed(ILogger logger, Exception exception);

    [LoggerMessage(1110, LogLevel.Warning, "Fault injection: the agent exits at commit point {Point} of checkpoint {CheckpointId}")]
    public static partial void FaultExit(ILogger logger, CommitPoint point, string checkpointId);

    [LoggerMessage(1200, LogLevel.Information, "Restore of checkpoint {CheckpointId} into {Target} started ({Method})")]
    public static partial void RestoreStarted(ILogger logger, string checkpointId, string target, string method);

    [LoggerMessage(1201, LogLevel.Information, "Checkpoint {CheckpointId} restored as container {ContainerId} (pid {Pid}) in {WallMs} ms")]
    public static partial void Restored(ILogger logger, string checkpointId, string containerId, uint pid, double wallMs);

    [LoggerMessage(1202, LogLevel.Warning, "Restore of checkpoint {CheckpointId} failed ({Kind}): {Message}")]
    public static partial void RestoreFailed(ILogger logger, string checkpointId, ErrorKind kind, string message);

    [LoggerMessage(1203, LogLevel.Warning, "Restore of checkpoint {CheckpointId}: could not remove what the failed restore created for {Target}")]
    public static partial void RestoreCleanupFailed(ILogger logger, Exception exception, string checkpointId, string target);

    [LoggerMessage(1204, LogLevel.Warning, "Restore of checkpoint {CheckpointId}: unmounted {MountPoint}, which containerd left behind after the failed restore")]
    public static partial void LeakedMountRemoved(ILogger logger, string checkpointId, string mountPoint);

    [LoggerMessage(1205, LogLevel.Information, "Restore of checkpoint {CheckpointId}: base image {Reference} pulled")]
    public static partial void BaseImagePulled(ILogger logger, string checkpointId, string reference);

    [LoggerMessage(1206, LogLevel.Information, "Restore of checkpoint {CheckpointId}: base image {Image} pinned to {Reference} in config.dump (containerd pulls it during a CRI restore)")]
    public static partial void BaseImagePinned(ILogger logger, string checkpointId, string image, string reference);

    [LoggerMessage(1207, LogLevel.Information, "Checkpoint {CheckpointId} imported as image {Reference} ({LayerBytes} bytes of layer)")]
    public static partial void CheckpointImageImported(ILogger logger, string checkpointId, string reference, long layerBytes);

    [LoggerMessage(1208, LogLevel.Information, "Checkpoint {CheckpointId}: this node has image {Reference} already")]
    public static partial void CheckpointImageReused(ILogger logger, string checkpointId, string reference);

    [LoggerMessage(1209, LogLevel.Warning, "Checkpoint {CheckpointId}: {Entry} is a symlink, which a checkpoint image cannot hold; left out")]
    public static partial void CheckpointImageEntrySkipped(ILogger logger, string checkpointId, string entry);

    [LoggerMessage(1210, LogLevel.Information, "Checkpoint {CheckpointId}: image {Reference} removed")]
    public static partial void CheckpointImageRemoved(ILogger logger, string checkpointId, string reference);

    [LoggerMessage(1211, LogLevel.Warning, "Checkpoint {CheckpointId}: image {Reference} was created meanwhile with manifest {Existing}, not {Built}; keeping it")]
    public static partial void CheckpointImageRaced(ILogger logger, string checkpointId, string reference, string existing, string built);

    [LoggerMessage(1212, LogLevel.Warning, "Restore of checkpoint {CheckpointId}: removed snapshot {Key}, which containerd left behind")]
    public static partial void LeakedSnapshotRemoved(ILogger logger, string checkpointId, string key);

    [LoggerMessage(1300, LogLevel.Warning, "Recovery: container {ContainerId} was left frozen by an agent that died during checkpoint {CheckpointId}; resuming it")]
    public static partial void RecoveringFrozen(ILogger logger, string containerId, string checkpointId);

    [LoggerMessage(1301, LogLevel.Information, "Recovery: container {ContainerId} stays stopped for checkpoint {CheckpointId} (left stopped on purpose)")]
    public static partial void KeepingLeftStopped(ILogger logger, string containerId, string checkpointId);

    [LoggerMessage(1302, LogLevel.Information, "Recovery: removed staging directory {Path} left by a previous agent")]
    public static partial void RemovedStaging(ILogger logger, string path);

    [LoggerMessage(1303, LogLevel.Error, "Recovery of container {ContainerId} failed")]
    public static partial void RecoveryFailed(ILogger logger, Exception exception, string containerId);

    [LoggerMessage(1304, LogLevel.Warning, "Recovery: container {ContainerId} stays stopped: checkpoint {CheckpointId} was published (committed) before the previous agent died")]
    public static partial void KeepingCommitted(ILogger logger, string containerId, string checkpointId);

    [LoggerMessage(1305, LogLevel.Warning, "Recovery: container {ContainerId} stays stopped: checkpoint {CheckpointId} was sealed (a target may run from it) but is not published; Resume releases it")]
    public static partial void KeepingSealed(ILogger logger, string containerId, string checkpointId);
    [LoggerMessage(1500, LogLevel.Information, "Checkpoint {CheckpointId} prepared for {Pod} container {Container} in {Path} ({Milliseconds} ms)")]
    public static partial void CheckpointPrepared(ILogger logger, string checkpointId, string pod, string container, string path, double milliseconds);

    [LoggerMessage(1509, LogLevel.Warning, "Image {Image} could not be pulled while a checkpoint was prepared (the kubelet pulls it): {Message}")]
    public static partial void PrepareImagePullFailed(ILogger logger, string image, string message);

    [LoggerMessage(1501, LogLevel.Warning, "Prepare of checkpoint {CheckpointId} failed ({Kind}): {Message}; nothing left staged")]
    public static partial void PrepareFailed(ILogger logger, string checkpointId, ErrorKind kind, string message);

    [LoggerMessage(1502, LogLevel.Information, "Prepared checkpoint {CheckpointId} released")]
    public static partial void PreparedReleased(ILogger logger, string checkpointId);

    [LoggerMessage(1503, LogLevel.Information, "Removed prepared staging {Path} ({Why})")]
    public static partial void RemovedPreparedStaging(ILogger logger, string path, string why);

    [LoggerMessage(1504, LogLevel.Warning, "Could not remove prepared staging {Path}")]
    public static partial void PreparedSweepFailed(ILogger logger, Exception exception, string path);

    [LoggerMessage(1505, LogLevel.Warning, "CRI Status could not be read for the runtime handlers: {Message}")]
    public static partial void RuntimeHandlersUnknown(ILogger logger, string message);

    [LoggerMessage(1600, LogLevel.Information, "Operation {OperationId} started: {Description}")]
    public static partial void OperationStarted(ILogger logger, string operationId, string description);

    [LoggerMessage(1601, LogLevel.Information, "Operation {OperationId} succeeded")]
    public static partial void OperationSucceeded(ILogger logger, string operationId);

    [LoggerMessage(1602, LogLevel.Warning, "Operation {OperationId} failed ({Kind}): {Message}")]
    public static partial void OperationFailed(ILogger logger, string operationId, ErrorKind kind, string message);

    [LoggerMessage(1603, LogLevel.Error, "Operation {OperationId} failed unexpectedly")]
    public static partial void OperationCrashed(ILogger logger, Exception exception, string operationId);

    [LoggerMessage(1604, LogLevel.Information, "Operation {OperationId}: cancel requested")]
    public static partial void OperationCancelRequested(ILogger logger, string operationId);

    [LoggerMessage(1605, LogLevel.Warning, "{Count} operations had not finished when the agent's shutdown grace ended")]
    public static partial void OperationsOutlivedShutdown(ILogger logger, int count);

    [LoggerMessage(1700, LogLevel.Debug, "Native memory: gave {ReleasedKiB} KiB of freed malloc memory back (anonymous RSS {BeforeKiB} -> {AfterKiB} KiB)")]
    public static partial void NativeMemoryReleased(ILogger logger, long releasedKiB, long beforeKiB, long afterKiB);
}
